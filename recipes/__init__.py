"""The recipes: runnable scripts (``python recipes/pretrain.py ...``), importable as ``recipes.pretrain``
(each has ``main(argv=None, **options)``)."""
