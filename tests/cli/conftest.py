# The app tests' small real index, for commands that answer from it (`ask`).
from tests.app.conftest import indexed, indexed_template, llm_settings  # noqa: F401
