"""Environment resolution: project defaults <- spec <- environments[env], giving the IR."""
