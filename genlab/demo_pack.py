"""Builds the demo pack (genlab/demo_data/) from the full data: `python -m genlab.demo_pack [--data ROOT]`.

The pack lets every tab and every `live` preset work where the full data is absent (a fresh clone, a
Hugging Face Space). It holds only images no shipped model trained on: the first MNIST / Fashion-MNIST
test digits, and faces from the 10% that genlab.data.folder_split holds out of each image folder. It keeps
the full data's layout and file names (so it is audited against the full data by name and pixels, in
tests/test_demo_pack.py) and stays under 15 MB. The same full data gives the same bytes.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import io
import shutil
import sys
from pathlib import Path

from . import data

MNIST_N, FASHION_N = 5000, 4000  # test digits kept (a prefix of each test set)
ANIME_N = 1500  # of the 2,044 held-out anime faces (64×64 JPEGs, copied byte for byte)
FACE_SIZE, FACE_QUALITY = 64, 95  # CelebA faces: 128×128 in the full data, 64×64 here (what the models use)
FACES = {"glasses": ("G", "NoG"), "hair": ("black", "blond")}
BUDGET = 15_000_000  # bytes, the whole pack

CELEBA = ("CelebA (Liu, Luo, Wang, Tang, ICCV 2015, MMLAB CUHK): **non-commercial research purposes only**; "
          "the photos' copyright belongs to their owners.")
LICENCES = {
    "MNIST": "MNIST (LeCun, Cortes, Burges): no licence stated on its page; commonly redistributed under CC BY-SA 3.0.",
    "FashionMNIST": "Fashion-MNIST (Zalando Research): MIT licence.",
    "anime": ("The anime-face set (Anime-Face-Dataset, bchao1 / Kaggle animefacedataset): for **educational use "
              "only**; the character art's copyright belongs to its owners (getchu.com)."),
    "glasses": CELEBA,
    "hair": CELEBA,
}


def idx_bytes(x) -> bytes:
    """uint8 tensor -> gzipped IDX (the MNIST format), deterministic (mtime 0)."""
    head = bytes([0, 0, 8, x.dim()]) + b"".join(int(d).to_bytes(4, "big") for d in x.shape)
    return gzip.compress(head + x.contiguous().numpy().tobytes(), 9, mtime=0)


def readme(path: Path, title: str, lines: list[str], licence: str) -> None:
    path.write_text(f"# {title} (GenLab demo pack)\n\n" + "\n\n".join(lines)
                    + f"\n\nRebuilt by `python -m genlab.demo_pack` from the full data (see the main README).\n\n"
                      f"## Licence\n{licence}\n")


def build_idx(name: str, loader, n: int, full: Path, out: Path) -> list[str]:
    x, y = loader(full, train=False)
    raw = out / name / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(idx_bytes(x[:n, 0]))
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(idx_bytes(y[:n].to(dtype=x.dtype)))
    counts = ", ".join(str(int((y[:n] == c).sum())) for c in range(10))
    readme(out / name / "README.md", name,
           [f"`raw/t10k-{{images-idx3,labels-idx1}}-ubyte.gz`: the **first {n:,} of the 10,000 test images** of "
            f"the original {name} files, unchanged (28×28 uint8, labels 0–9), gzipped IDX.",
            f"Per class: {counts}.",
            f"No training image is here. GenLab uses the first {data.PACK_TEST:,} as the pack's test digits (the "
            f"Digits tab; their indices are those of the full test set) and the other {n - data.PACK_TEST:,} "
            "as its training digits (live runs, which then score on digits they did not train on)."],
           LICENCES[name])
    return [f"| {name}/raw | first {n:,} test images (IDX.gz) | {n:,} |"]


def build_faces(full: Path, out: Path) -> list[str]:
    from torchvision.transforms.v2 import functional as F

    rows = []
    anime = data.held_out_files(full / "anime" / "faces")[:ANIME_N]
    (out / "anime" / "faces").mkdir(parents=True)
    for p in anime:
        shutil.copyfile(p, out / "anime" / "faces" / p.name)
    readme(out / "anime" / "README.md", "Anime faces",
           [f"`faces/*.jpg`: **{len(anime):,} of the 2,044 faces that genlab.data.folder_split holds out** of the "
            f"full `anime/faces` (20,442 faces), byte-identical 64×64 JPEGs under their full-data names. "
            f"No shipped model trained on them."],
           LICENCES["anime"])
    rows.append(f"| anime/faces | held-out anime faces, 64×64 JPEG (byte copies) | {len(anime):,} |")
    for group, classes in FACES.items():
        with open(full / group / "attributes.csv", newline="") as f:
            reader = csv.DictReader(f)
            header, attrs = reader.fieldnames, {r["filename"]: r for r in reader}
        kept, counts = [], []
        for c in classes:
            (out / group / c).mkdir(parents=True)
            files = data.held_out_files(full / group / c)
            for p in files:
                buf = io.BytesIO()
                F.to_pil_image(data.read_image(p, FACE_SIZE)).save(buf, "JPEG", quality=FACE_QUALITY)
                (out / group / c / p.name).write_bytes(buf.getvalue())
                kept.append(f"{c}/{p.name}")
            counts.append(f"{c} {len(files):,}")
        with open(out / group / "attributes.csv", "w", newline="") as f:
            w = csv.DictWriter(f, header, lineterminator="\n")
            w.writeheader()
            w.writerows(attrs[k] for k in kept if k in attrs)  # in held-out order: faces.book_example reads it
        males = {c: sum(int(attrs[k]["male"]) for k in kept if k.startswith(c + "/") and k in attrs) for c in classes}
        readme(out / group / "README.md", f"CelebA faces: {group}",
               [f"`{{{','.join(classes)}}}/*.jpg`: **every face that genlab.data.folder_split holds out** of the full "
                f"`{group}/` folders ({', '.join(counts)}; male: "
                + ", ".join(f"{c} {m}" for c, m in males.items())
                + f"), under their full-data (CelebA id) names, as {FACE_SIZE}×{FACE_SIZE} JPEG q{FACE_QUALITY} "
                  f"(the full data's 128×128 through genlab.data.read_image: centre square, antialiased resize).",
                f"`attributes.csv`: the full data's labels ({', '.join(header[1:])}) of these faces, in the order "
                "folder_split holds them out (so the Face VAE's book example picks the same faces as on the full data).",
                "No shipped model trained on them. The Face VAE tab shows them all as held-out faces; a live run "
                "on the pack splits them 90/10 again, so its preview and score use faces it did not train on."],
               LICENCES[group])
        rows.append(f"| {group}/{{{','.join(classes)}}} | held-out CelebA faces, {FACE_SIZE}×{FACE_SIZE} JPEG "
                    f"+ attributes.csv | {', '.join(counts)} |")
    return rows


def build(full: Path, out: Path) -> int:
    """Write the pack to `out` (replaced whole); returns its size in bytes."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    full = Path(full)
    rows = build_idx("MNIST", data.mnist_images, MNIST_N, full, tmp)
    rows += build_idx("FashionMNIST", data.fashion_images, FASHION_N, full, tmp)
    rows += build_faces(full, tmp)
    size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    (tmp / "README.md").write_text(
        "# GenLab demo pack\n\nA small data root that ships in the repo, used where the full data is not found "
        "(a fresh clone, a Hugging Face Space), so every tab and every `live` preset of the live-training tab "
        "works. Only images no shipped model trained on: test digits, and faces from the 10% that "
        "genlab.data.folder_split holds out of each folder. `python -m train` with the `cpu` / `book` presets "
        "never uses it.\n\n| folder | what | images |\n|---|---|---|\n" + "\n".join(rows)
        + f"\n\nSize: {size / 1e6:.1f} MB of files (budget {BUDGET / 1e6:.0f} MB). Rebuild: "
          "`python -m genlab.demo_pack --data ../shared/data`. Licences: each folder's README "
          "(CelebA: non-commercial research; anime faces: educational use).\n")
    size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    if size > BUDGET:
        raise SystemExit(f"the pack is {size:,} bytes, over its {BUDGET:,} budget")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return size


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="the full data root (default: $GENLAB_DATA, ./data, ../shared/data)")
    p.add_argument("--out", default=str(data.PACK), help=f"where the pack goes (default: {data.PACK})")
    a = p.parse_args(argv)
    full = data.data_root(a.data)
    if data.is_pack(full):
        raise SystemExit("--data must be the full data, not the pack")
    try:
        size = build(full, Path(a.out))
    except data.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{a.out}: {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
