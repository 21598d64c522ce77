"""MkDocs hook: pages get what is written from the code at build time (robustmia.cli_docs.fill), so they cannot
drift from it: the CLI reference from the typer app (`robustmia COMMAND --help`), the keys of study specs
from the models that validate them, and the tables of presets, recipes, models, methods and attacks from their
registries."""


def on_page_markdown(markdown, page, config, files):
    from robustmia import cli_docs

    return cli_docs.fill(markdown)
