"""One module per dataset (see robustmia.data.catalog for what each defines)."""
