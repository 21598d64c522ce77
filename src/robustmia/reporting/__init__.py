"""Reports: the paper's tables, its figures and one self-contained HTML page, from study results."""
