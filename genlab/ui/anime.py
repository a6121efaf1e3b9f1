"""The "Anime faces" tab (chapter 4): the DCGAN's 64×64 faces; see image_gan.py."""
from .image_gan import build_tab

INTRO = ("### Chapter 4: a DCGAN draws anime faces\nA deep convolutional GAN trained on 18,398 anime faces "
         "(64×64). Pick two faces and slide between them to see that nearby codes give related faces.")


def build(session):
    build_tab(session, "anime_dcgan", "anime", INTRO)
