"""Plugins shipped in the box: the github_actions action plugin and the env, file and vault
secret stores. They are written against the public plugin contract only, exactly as an
installed plugin would be; the host registers them before the entry points."""
