"""Where datasets live and how they load: torchvision MNIST/Fashion-MNIST, image folders, toy samplers.

The data root is resolved as: an explicit argument (the CLI's --data), then $GENLAB_DATA, then ./data,
then ../shared/data next to the repo.
Nothing is downloaded unless $GENLAB_ALLOW_DOWNLOAD=1; a missing dataset is a DataError that says
which folder to fill and how.

Where the data root lacks a dataset, the app's tabs and live runs (training.train(demo=True): the live tab,
the CLI's live preset) fall back to the demo pack in genlab/demo_data/ (`source`): the same layout,
a few thousand images, all from the full data's test or held-out split (built by genlab/demo_pack.py). The pack is a data root like any other: image folders split 90/10 the
same way, digits into test and train parts, so a live run on it previews and scores on pack images it did
not train on.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from pathlib import Path

import torch

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class DataError(RuntimeError):
    """A dataset is missing or unusable; the message says what to do."""


SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"  # ../shared/data beside the repo
PACK = Path(__file__).resolve().parent / "demo_data"  # the demo pack that ships in the repo
IDX_SETS = {"MNIST", "FashionMNIST"}  # torchvision's IDX datasets; the rest are image folders
IDX_FILES = [f"{s}-{k}-ubyte.gz" for s in ("train", "t10k") for k in ("images-idx3", "labels-idx1")]  # both sets'


def data_root(root: str | os.PathLike | None = None) -> Path:
    """--data, then $GENLAB_DATA, then ./data, then ../shared/data beside the repo when ./data is absent."""
    if root or os.environ.get("GENLAB_DATA"):
        return Path(root or os.environ["GENLAB_DATA"]).expanduser()
    return Path("data") if Path("data").is_dir() or not SHARED.is_dir() else SHARED


def available(root: Path, folder: str) -> bool:
    """Whether `root` holds `folder` ("MNIST", "anime/faces", ...) as a full dataset (or may download it)."""
    if folder in IDX_SETS:
        return _download_allowed() or all((root / folder / "raw" / n).is_file() for n in IDX_FILES)
    d = root / folder
    return d.is_dir() and any(p.suffix.lower() in IMAGE_EXTS for p in d.iterdir())


def is_pack(root) -> bool:
    return root is not None and Path(root).resolve() == PACK


def source(folders, root=None, demo: bool = True) -> Path:
    """The data root to read `folders` from: the full data root when it holds them all, else (demo=True)
    the demo pack. demo=False (the CLI's cpu/book presets, evaluation) always answers the full data root."""
    full = data_root(root)
    if not demo or all(available(full, f) for f in folders) or not PACK.is_dir():
        return full
    return PACK


def describe(root) -> str:
    """A line for the page: which data a tab or a run is using."""
    if is_pack(root):
        return ("the **demo pack** that ships in the repo (genlab/demo_data: a few thousand held-out / test "
                "images; the full data was not found)")
    return "the full dataset under the data root"  # not its path: the page is public


def cache_dir() -> Path:
    d = Path(os.environ.get("GENLAB_CACHE") or Path.home() / ".cache" / "genlab")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _download_allowed() -> bool:
    return os.environ.get("GENLAB_ALLOW_DOWNLOAD") == "1"


def _idx_dataset(cls, folder: str, root: Path, train: bool):
    """torchvision MNIST / FashionMNIST from <root>/<folder>/raw/*.gz without writing into root.

    torchvision wants the unpacked IDX files; the shared data root is read-only, so the .gz files
    are copied to a cache and torchvision's own md5-checked "download" unpacks them there offline.
    """
    src = root / folder / "raw"
    cache = cache_dir() / "torchvision"
    names = [Path(url).name for url, _ in cls.resources]
    have = src.is_dir() and all((src / n).is_file() for n in names)
    if have:
        dst = cache / folder / "raw"
        dst.mkdir(parents=True, exist_ok=True)
        for n in names:
            if not (dst / n).is_file() or (dst / n).stat().st_size != (src / n).stat().st_size:
                shutil.copyfile(src / n, dst / n)
        try:
            return cls(str(cache), train=train, download=True)
        except RuntimeError as e:
            raise DataError(f"{folder} files in {src} failed their checksum: {e}") from None
    if _download_allowed():
        return cls(str(root), train=train, download=True)
    raise DataError(
        f"{folder} not found: expected {', '.join(names)} in {src}. Point --data or GENLAB_DATA at a "
        f"folder holding {folder}/raw/*.gz, or set GENLAB_ALLOW_DOWNLOAD=1 to let torchvision download it.")


def read_idx(path: Path) -> torch.Tensor:
    """An IDX file (.gz), the MNIST format: magic (0, 0, type 8 = uint8, ndim), ndim big-endian sizes, the bytes."""
    with gzip.open(path, "rb") as f:
        b = f.read()
    if b[:3] != b"\x00\x00\x08":
        raise DataError(f"{path} is not a uint8 IDX file")
    ndim = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return torch.frombuffer(bytearray(b[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


PACK_TEST = 1000  # the pack's first 1,000 digits are its test part, the rest its training part


def _pack_idx(folder: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The pack's digits: a prefix of the real test set (t10k files). Its first PACK_TEST are "test" (the
    same indices as in the full test set, so the Digits tab's digit 7 is MNIST's test digit 7), the rest
    "train" for live runs, which then score on digits they did not train on. No shipped model saw any."""
    raw = PACK / folder / "raw"
    try:
        x = read_idx(raw / "t10k-images-idx3-ubyte.gz")
        y = read_idx(raw / "t10k-labels-idx1-ubyte.gz").long()
    except FileNotFoundError as e:
        raise DataError(f"the demo pack has no {folder}: {e.filename} is missing (python -m genlab.demo_pack "
                        f"rebuilds it)") from None
    part = slice(PACK_TEST, None) if train else slice(0, PACK_TEST)
    return x[part].unsqueeze(1).contiguous(), y[part]


def mnist_images(root=None, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as (uint8 N×1×28×28, int64 labels)."""
    from torchvision.datasets import MNIST
    if is_pack(data_root(root)):
        return _pack_idx("MNIST", train)
    ds = _idx_dataset(MNIST, "MNIST", data_root(root), train)
    return ds.data.unsqueeze(1).contiguous(), ds.targets.clone()


def fashion_images(root=None, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST as (uint8 N×1×28×28, int64 labels)."""
    from torchvision.datasets import FashionMNIST
    if is_pack(data_root(root)):
        return _pack_idx("FashionMNIST", train)
    ds = _idx_dataset(FashionMNIST, "FashionMNIST", data_root(root), train)
    return ds.data.unsqueeze(1).contiguous(), ds.targets.clone()


FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"Image folder {folder} does not exist. Put the dataset there (see ../shared/data/*/README.md) "
                        f"or point --data / GENLAB_DATA at the data root.")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise DataError(f"Image folder {folder} holds no images (.jpg/.png).")
    return files


def load_folder(folder: str | os.PathLike, size: int, limit: int | None = None) -> torch.Tensor:
    """Every image of a folder as uint8 N×3×size×size (centre square crop, antialiased resize).

    Decoded once and cached under the cache dir, keyed on the file list, size and limit, so a second
    run starts in a second instead of decoding thousands of JPEGs again.
    """
    files = image_files(Path(folder))[:limit]
    h = hashlib.sha256(f"{size}|{len(files)}".encode())
    for p in files:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode())
    cached = cache_dir() / "folders" / f"{h.hexdigest()[:20]}.pt"
    if cached.is_file():
        try:
            return torch.load(cached, weights_only=True)
        except Exception:
            cached.unlink(missing_ok=True)
    out = torch.empty(len(files), 3, size, size, dtype=torch.uint8)
    for i, p in enumerate(files):
        out[i] = read_image(p, size)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    torch.save(out, tmp)
    os.replace(tmp, cached)
    return out


def read_image(path: Path, size: int) -> torch.Tensor:
    """One image file as uint8 3×size×size: the centre square, antialiased resize."""
    from PIL import Image
    from torchvision.transforms.v2 import functional as F

    with Image.open(path) as im:  # PIL: torchvision 0.29 deprecated its own image decoding
        img = F.pil_to_tensor(im.convert("RGB"))
    s = min(img.shape[-2:])
    img = F.center_crop(img, [s, s])
    if s != size:
        img = F.resize(img, [size, size], antialias=True)
    return img


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 -> float in [0, 1]."""
    return x.float().div_(255)


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """uint8 -> float in [-1, 1], the range a tanh generator produces."""
    return x.float().div_(127.5).sub_(1)


def split(n: int, holdout: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed random split of range(n) into (train, held-out) indices."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = int(round(n * holdout))
    return perm[k:], perm[:k]


HOLDOUT = 0.1  # share of every image folder kept out of training, for evaluation


def held_out_files(folder: str | os.PathLike, holdout: float = HOLDOUT) -> list[Path]:
    """The files of a folder that folder_split holds out, in its order."""
    files = image_files(Path(folder))
    return [files[i] for i in split(len(files), holdout)[1].tolist()]


def folder_split(folder: str | os.PathLike, size: int, holdout: float = HOLDOUT) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) uint8 images of a folder; the same fixed split for every model and evaluator."""
    x = load_folder(folder, size)
    tr, ho = split(len(x), holdout)
    return x[tr], x[ho]
