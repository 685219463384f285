#!/usr/bin/env python3
"""Build a kaldifeat wheel from its PyPI sdist as a torch C++ extension.

Usage:
    python tools/build_kaldifeat.py --sdist kaldifeat-1.24.tar.gz \
        --wheel-dir .cache/wheels

Why not ``pip install kaldifeat``: the sdist builds with CMake, and torch's CMake
config insists on a CUDA toolkit for CUDA builds of torch (the PyPI torch 1.13.1
is one), and the build downloads pybind11 from the internet. kaldifeat is pure
libtorch C++, so ``torch.utils.cpp_extension`` (which ships pybind11 headers and
the right compiler flags) builds the same sources without either. The result
works on CPU and, with a CUDA build of torch, on GPU.

Run this with the interpreter of the environment the wheel is for: the wheel is
tied to that Python and that torch version (``import kaldifeat`` checks it).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SETUP_PY = """
import glob
import os
from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

candidates = glob.glob("kaldifeat/csrc/*.cc") + glob.glob("kaldifeat/python/csrc/*.cc")
sources = sorted(
    f for f in candidates
    if not f.endswith("-test.cc") and not f.endswith("test_kaldifeat.cc")
)
setup(
    name="kaldifeat",
    version={version!r},
    packages=["kaldifeat"],
    package_dir={{"kaldifeat": "kaldifeat/python/kaldifeat"}},
    ext_modules=[
        CppExtension(
            "_kaldifeat",
            sources,
            include_dirs=[os.path.abspath(".")],
            define_macros=[
                ("KALDIFEAT_TORCH_VERSION_MAJOR", "{major}"),
                ("KALDIFEAT_TORCH_VERSION_MINOR", "{minor}"),
                ("KALDIFEAT_HAS_FFT_NAMESPACE", None),
                ("TORCH_API_INCLUDE_EXTENSION_H", None),
            ],
            extra_compile_args=["-O3", "-std={cxx_std}"],
        )
    ],
    cmdclass={{"build_ext": BuildExtension}},
)
"""


def build(sdist: Path, wheel_dir: Path) -> Path:
    import torch

    torch_version = torch.__version__
    major, minor = torch_version.split(".")[:2]
    wheel_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kaldifeat-build-") as tmp:
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp)
        (src,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
        version = src.name.split("-", 1)[1]
        # Local version label records the torch it was built against.
        wheel_version = f"{version}+torch{torch_version.split('+')[0]}"
        pkg = src / "kaldifeat" / "python" / "kaldifeat"
        (pkg / "torch_version.py").write_text(
            f'kaldifeat_torch_version = "{torch_version}"\n'
        )
        (src / "setup.py").write_text(
            SETUP_PY.format(
                version=wheel_version,
                major=major,
                minor=minor,
                # torch 2.x headers need C++17; 1.x builds as the sdist intends.
                cxx_std="c++17" if int(major) >= 2 else "c++14",
            )
        )
        for stale in ("pyproject.toml", "setup.cfg"):
            (src / stale).unlink(missing_ok=True)
        env = dict(os.environ, MAX_JOBS=str(os.cpu_count() or 1))
        out = Path(tmp) / "dist"
        subprocess.run(
            [sys.executable, "setup.py", "-q", "bdist_wheel", "-d", str(out)],
            cwd=src,
            env=env,
            check=True,
        )
        (wheel,) = out.glob("*.whl")
        target = wheel_dir / wheel.name
        shutil.move(str(wheel), str(target) + ".tmp")
        os.replace(str(target) + ".tmp", target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sdist", type=Path, required=True)
    parser.add_argument("--wheel-dir", type=Path, required=True)
    args = parser.parse_args()
    print(build(args.sdist, args.wheel_dir))


if __name__ == "__main__":
    main()
