"""Training and evaluation: make your own Johnson styles and DABNet segmenters.

Kept apart from the live engine because it pulls in things the engine never needs (VGG16,
optimisers, dataset scanning) and runs for hours, not frames. Everything it writes loads with
the engine's own loaders (``load_transformer``, ``load_dabnet``), so a finished run is usable at
once with ``--assign CLASS=johnson:OUT.pth`` or ``--segmenter cityscapes --weights OUT.pth``.

Modules, one job each: ``data`` (finding and reading datasets), ``prepare`` (turning raw data
into those layouts), ``vgg`` (the perceptual-loss network), ``loop`` (steps, resume,
checkpoints, progress), ``style`` and ``seg`` (the two recipes), ``eval`` (IoU and speed),
``cli`` (the ``train``, ``eval`` and ``data`` commands).
"""
