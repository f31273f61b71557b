"""Sample quality as a benchmark: features from a fixed network, distances between sets of them.

``gantool eval`` lives here, beside ``bench``: it reads artifacts only through
the runtime's public API (``Generator``, ``Translator``), turns images into
features with an extractor that is never downloaded at run time
(``extractors``: the bundled ``digits`` CNN, or the standard FID Inception from
a local file or the ``inception`` extra, its sha256 checked), and compares sets
of features with FID, KID, precision/recall and density/coverage
(``metrics``), always beside a noise floor measured at the same N.
"""
