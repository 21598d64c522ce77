"""MkDocs hook: pages get what is written from the code at build time (robustmia.cli_docs), so they cannot
drift from it: the CLI reference from the typer app (`robustmia COMMAND --help`), the keys of study specs
from the models that validate them."""

MARKER = "<!-- the CLI reference is written here at build time -->"
KEYS = "<!-- the spec keys are written here at build time -->"


def on_page_markdown(markdown, page, config, files):
    from robustmia import cli_docs

    if MARKER in markdown:
        markdown = markdown.replace(MARKER, cli_docs.markdown())
    if KEYS in markdown:
        markdown = markdown.replace(KEYS, cli_docs.spec_keys())
    return markdown
