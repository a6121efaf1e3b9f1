"""Where datasets live and how they load: torchvision MNIST/Fashion-MNIST, image folders, toy samplers.

The data root is resolved as: an explicit argument (the CLI's --data), then $GENLAB_DATA, then ./data,
then ../shared/data next to the repo.
Nothing is downloaded unless $GENLAB_ALLOW_DOWNLOAD=1; a missing dataset is a DataError that says
which folder to fill and how.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import torch

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class DataError(RuntimeError):
    """A dataset is missing or unusable; the message says what to do."""


SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"  # ../shared/data beside the repo


def data_root(root: str | os.PathLike | None = None) -> Path:
    """--data, then $GENLAB_DATA, then ./data, then ../shared/data beside the repo when ./data is absent."""
    if root or os.environ.get("GENLAB_DATA"):
        return Path(root or os.environ["GENLAB_DATA"]).expanduser()
    return Path("data") if Path("data").is_dir() or not SHARED.is_dir() else SHARED


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


def mnist_images(root=None, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as (uint8 N×1×28×28, int64 labels)."""
    from torchvision.datasets import MNIST
    ds = _idx_dataset(MNIST, "MNIST", data_root(root), train)
    return ds.data.unsqueeze(1).contiguous(), ds.targets.clone()


def fashion_images(root=None, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST as (uint8 N×1×28×28, int64 labels)."""
    from torchvision.datasets import FashionMNIST
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
    from PIL import Image
    from torchvision.transforms.v2 import functional as F

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
        with Image.open(p) as im:  # PIL: torchvision 0.29 deprecated its own image decoding
            img = F.pil_to_tensor(im.convert("RGB"))
        s = min(img.shape[-2:])
        img = F.center_crop(img, [s, s])
        if s != size:
            img = F.resize(img, [size, size], antialias=True)
        out[i] = img
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    torch.save(out, tmp)
    os.replace(tmp, cached)
    return out


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


def folder_split(folder: str | os.PathLike, size: int, holdout: float = HOLDOUT) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) uint8 images of a folder; the same fixed split for every model and evaluator."""
    x = load_folder(folder, size)
    tr, ho = split(len(x), holdout)
    return x[tr], x[ho]
