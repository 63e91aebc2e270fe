"""Start a modelops project in any repository: `modelops init` and `modelops new`.

The files are text for people to edit (comments included), so they come from templates in
`templates/`; every value put into them is checked first (names as DNS labels, the Git
remote against the project schema's own pattern) and written as a quoted YAML scalar, and
tests load each result with the project's own validator.
"""

# Here, not in project.py: the CLI's parser offers them without importing Jinja2 or pydantic.
DEFAULT_TEAM = "my-team"
TASKS = ("classification", "regression")
