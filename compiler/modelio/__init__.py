"""Model artifacts: fetch by URI, verify the sha256 pin, load skops files with a trusted-type list."""
