"""Tensors to grids and PIL images, and uploads to tensors, at the edge of the app."""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, ImageOps

# No torchvision here: importing it costs 1.7-2.9 s of the app's start-up (its __init__ pulls in torch._dynamo),
# and these three conversions are a few tensor ops. tests/test_images.py checks they equal torchvision's
# make_grid, to_pil_image and to_tensor exactly.

MAX_UPLOAD_PIXELS = 40_000_000  # refuse decompression bombs before decoding
# ... and bound the decoded bytes: a 77 KB 16-bit PNG of 39.7 MP under the pixel limit cost the server +757 MB.
# 48 MB is a 12 MP colour image decoded (Pillow keeps RGB as 4 bytes a pixel); a bigger JPEG photo is decoded
# at 1/2, 1/4 or 1/8 scale (Pillow's draft) to fit, and anything decoded is shrunk at once to MAX_SIDE.
MAX_DECODED_BYTES = 48 * 2**20
MAX_SIDE = 1024  # the models use 28-128 px; the page shows at most 256 px


class ImageInputError(ValueError):
    """An uploaded image we cannot use; the message is meant for the user."""


def grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """N×C×H×W in [0, 1] -> one C×H'×W' grid image, laid out as torchvision's make_grid (grey becomes RGB)."""
    x = images.detach().float().clamp(0, 1).cpu()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    n, c, h, w = x.shape
    if n == 1:
        return x[0].clone()  # make_grid does not pad a single image
    cols = min(nrow, n)
    rows = -(-n // cols)
    cells = x.new_full((rows * cols, c, h + padding, w + padding), pad_value)
    cells[:n, :, padding:, padding:] = x  # each cell: padding above and left of its image
    out = cells.view(rows, cols, c, h + padding, w + padding).permute(2, 0, 3, 1, 4)
    out = out.reshape(c, rows * (h + padding), cols * (w + padding))
    return torch.nn.functional.pad(out, (0, padding, 0, padding), value=pad_value)


def to_pil(image: torch.Tensor, scale: int = 1) -> Image.Image:
    """C×H×W in [0, 1] -> PIL (RGB or L), optionally upscaled with nearest neighbour for crisp pixels."""
    arr = image.detach().float().clamp(0, 1).cpu().mul(255).byte().permute(1, 2, 0).numpy()
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL -> 3×H×W float tensor in [0, 1]."""
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).float().div(255)


def grid_pil(images: torch.Tensor, nrow: int = 8, scale: int = 1) -> Image.Image:
    return to_pil(grid(images, nrow=nrow), scale=scale)


def open_image(data, max_pixels: int = MAX_UPLOAD_PIXELS) -> Image.Image:
    """Open a path, bytes or PIL image, refusing what is not a sane still image (over max_pixels, or over
    MAX_DECODED_BYTES once decoded) before its pixels are decoded."""
    if data is None:
        raise ImageInputError("No image was given: upload one or pick an example.")
    if isinstance(data, Image.Image):
        img = data
    else:
        try:
            src = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
            img = Image.open(src)  # reads the header only: the checks below run before any pixel is decoded
            if img.width * img.height > max_pixels:
                raise ImageInputError(f"The image is {img.width}×{img.height}; the limit is {_mp(max_pixels)}.")
            if img.format == "JPEG" and max(img.size) > MAX_SIDE:
                img.draft(img.mode, (MAX_SIDE, MAX_SIDE))  # decode at a reduced scale (JPEG's DCT allows it)
            if decoded_bytes(img) > MAX_DECODED_BYTES:
                raise ImageInputError(
                    f"The image is {img.width}×{img.height} ({img.mode}): {decoded_bytes(img) / 2**20:.0f} MB decoded, "
                    f"the limit is {MAX_DECODED_BYTES // 2**20} MB. Use a smaller or 8-bit image.")
            img.load()
            if max(img.size) > MAX_SIDE:  # later conversions (RGBA on white, 16-bit to 8) copy the image
                img = shrink(img, MAX_SIDE)
        except ImageInputError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageInputError(f"The image is too large to open safely: the limit is {_mp(max_pixels)}.") from None
        except Exception as e:  # PIL raises many types for bad files
            raise ImageInputError(f"That file is not an image we can read ({type(e).__name__}).") from None
    if img.width * img.height > max_pixels:
        raise ImageInputError(f"The image is {img.width}×{img.height}; the limit is {_mp(max_pixels)}.")
    if img.width < 1 or img.height < 1:
        raise ImageInputError("The image is empty.")
    return img


def _mp(pixels: int) -> str:
    return f"{pixels / 1e6:.3g} megapixels"


def decoded_bytes(img: Image.Image) -> int:
    """Bytes Pillow needs for the decoded image: 1 a pixel for 1/L/P, 2 for 16-bit grey, else 4 (RGB too)."""
    bpp = 1 if img.mode in ("1", "L", "P") else 2 if img.mode.startswith("I;16") else 4
    return img.width * img.height * bpp


def shrink(img: Image.Image, side: int) -> Image.Image:
    """At most side px on the long edge, keeping the mode (16-bit grey is resized as 32-bit integers)."""
    k = side / max(img.size)
    size = (max(1, round(img.width * k)), max(1, round(img.height * k)))
    if img.mode.startswith("I;16"):
        img = img.convert("I")
    elif img.mode in ("1", "P"):
        return img.resize(size, Image.NEAREST)
    return img.resize(size, Image.BOX)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any mode (L, I;16, CMYK, P, RGBA, animated) -> RGB; transparency is put on white."""
    if getattr(img, "is_animated", False):
        img.seek(0)
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float32)  # float32, not 64: 4 bytes a pixel, not 8
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) * (255 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(arr.astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    return img.convert("RGB")


def square_crop(img: Image.Image) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """Centre square crop; returns the crop and its box (left, top, right, bottom)."""
    s = min(img.width, img.height)
    left, top = (img.width - s) // 2, (img.height - s) // 2
    box = (left, top, left + s, top + s)
    return img.crop(box), box


def load_upload(data) -> Image.Image:
    """An upload (path, bytes, PIL) -> RGB PIL; ImageInputError with a message for the user if unusable."""
    img = open_image(data)
    try:
        return to_rgb(img)
    except Exception as e:  # an odd mode or broken metadata that PIL cannot convert
        raise ImageInputError(f"That image cannot be converted to RGB ({type(e).__name__}).") from None


def preview(data, max_side: int = 256) -> Image.Image:
    """An upload shrunk to at most max_side px, with its centre square (what a face model uses) in red."""
    from PIL import ImageDraw

    img = load_upload(data)
    _, box = square_crop(img)
    k = min(1.0, max_side / max(img.size))
    if k < 1:
        img = img.resize((max(1, round(img.width * k)), max(1, round(img.height * k))), Image.BILINEAR)
    else:
        img = img.copy()
    ImageDraw.Draw(img).rectangle([round(v * k) for v in box], outline=(255, 0, 0),
                                  width=max(1, round(max(img.size) / 100)))
    return img


def load_face(data, size: int) -> torch.Tensor:
    """An upload -> 3×size×size float tensor in [0, 1]: RGB, centre-cropped square, resized."""
    img = load_upload(data)
    img, _ = square_crop(img)
    return to_tensor(img.resize((size, size), Image.LANCZOS))


def figure(w: float = 6, h: float = 4):
    """A matplotlib Figure made without pyplot: no global state, so safe in server threads."""
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100)


def figure_to_pil(fig) -> Image.Image:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    buf.seek(0)
    return Image.open(buf).convert("RGB")
