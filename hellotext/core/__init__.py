"""Domain rules: plain Python, no web framework and no SQL.

Modules hold one concept each (`values`, `ids`, `events`, `identity`, `profiles`, `links`, ...). They talk to
storage only through the protocols in `hellotext.core.ports`.
"""
