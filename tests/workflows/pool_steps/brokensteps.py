"""A workflow module that cannot be imported: its steps must fail saying so."""

raise RuntimeError("brokensteps is broken on purpose")
