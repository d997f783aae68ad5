"""HTTP only: parse, authorize, call the domain or a store read, shape JSON. No SQL here."""
