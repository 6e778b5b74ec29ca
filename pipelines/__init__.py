"""One module per Beam job (``build(pipeline, config)`` + ``run(argv)``) and what they
share: composite transforms, reading, shard writing, stats and the runner."""
