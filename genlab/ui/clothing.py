"""The "Clothing" tab (chapter 4): the dense GAN's Fashion-MNIST samples; see image_gan.py."""
from .image_gan import build_tab

INTRO = ("### Chapter 4: a GAN draws clothes\nA dense GAN (784-pixel vectors, no convolutions) trained on "
         "Fashion-MNIST: T-shirts, trousers, pullovers, dresses, coats, sandals, shirts, sneakers, bags, ankle boots.")


def build(session):
    build_tab(session, "clothing_gan", "clothing", INTRO)
