from setuptools import find_packages, setup

setup(
    name="blobsvc",
    version="0.1.0",
    description="A standalone HTTP blob-storage service",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["blobsvc", "blobsvc.*"]),
    install_requires=[
        "CherryPy>=18.8",
        "cheroot>=9.0",
        "PyYAML>=6.0",
        "prometheus-client>=0.16",
        # The S3 API parses clients' XML bodies: no DTDs, entities or external references.
        "defusedxml>=0.7",
        # CRC32C (and, from 0.23.4, CRC64NVME) for S3's x-amz-checksum-*,
        # from the library AWS's SDKs compute them with; 0.16.8 is Debian 12's.
        "awscrt>=0.16.8",
    ],
    extras_require={
        "swift": ["python-swiftclient>=4.1"],
        # blobsvc.client: streaming both ways, pooling and retry policies;
        # tqdm draws the command line's progress bars on a terminal.
        "client": ["urllib3>=2.0", "tqdm>=4.60"],
        # blobsvc:// for pandas, pyarrow and the rest of the fsspec world;
        # 2024.12.0: its exclusive writes (open "xb", pipe_file mode="create").
        "fsspec": ["urllib3>=2.0", "fsspec>=2024.12.0"],
        "test": [
            # schemathesis 4.32's pytest integration fails on pytest 9.2
            # ('Function' object has no attribute '_nodeid').
            "pytest>=7.2,<9.1",
            "WebTest>=3.0",
            "requests>=2.28",
            "urllib3>=2.0",
            "tqdm>=4.60",  # the client command line's progress bars, tested on a pty
            "python-swiftclient>=4.1",
            "hypothesis>=6.80",
            "openapi-spec-validator>=0.7",
            "openapi-schema-validator>=0.6",
            "referencing>=0.30",
            "schemathesis>=4.32,<5",
            # Drives Debian's chromium through its chromedriver: 4.13 takes
            # Service(path, log_output=...) and, given a path, never runs
            # Selenium Manager (which would download a driver).
            "selenium>=4.13",
            # The fsspec filesystem, its abstract suite, and the readers
            # (pandas CSV/parquet, pyarrow datasets) it exists for.
            "fsspec>=2024.12.0",
            "pandas>=2.2.3",
            "pyarrow>=16.0",
            # The reference SigV4 signer the S3 front end's verification is
            # tested against, and the S3 client it must serve; 1.36 has the
            # request_checksum_calculation option the S3 API tests set.
            "boto3>=1.36",
            # The AWS CLI (v1) tests/test_s3_clients.py runs as users run it;
            # it carries a botocore of its own, so it leaves boto3's alone.
            "awscli>=1.46",
        ],
    },
    entry_points={
        "console_scripts": ["blobsvc = blobsvc.cli:main"],
        # fsspec looks protocols up here: "blobsvc://" needs no import.
        "fsspec.specs": ["blobsvc = blobsvc.client.fs:BlobsvcFileSystem"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: CherryPy",
        "Topic :: System :: Archiving",
    ],
)
