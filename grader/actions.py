"""What GitHub Actions tells a step through its environment, read in one place: the token, the
API's address, the files a step writes its outputs and its summary to, and who pushed what
where. Every command and stage that needs one of them asks `Actions.read()`, so each variable
is spelt once and has one default (the event's payload and name are `grader ci`'s options,
which click reads from GITHUB_EVENT_PATH and GITHUB_EVENT_NAME). Stdlib only: the lowest
layer, below anything that holds the token or runs student code (the sandboxed side never
imports it)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_API_URL = "https://api.github.com"


@dataclass(frozen=True)
class Actions:
    token: str = ""
    api_url: str = DEFAULT_API_URL
    step_summary: str | None = None  # GITHUB_STEP_SUMMARY: Markdown shown on the run's page
    output: str | None = None  # GITHUB_OUTPUT: the step's `name=value` outputs
    repository: str | None = None  # OWNER/NAME of the repository the workflow runs in
    repository_owner: str | None = None
    sha: str | None = None  # the commit the workflow runs on
    actor: str | None = None  # who started it

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> Actions:
        """The environment as it is now (empty strings read as unset, as Actions sets some)."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return env.get(name) or None

        return cls(
            token=env.get("GITHUB_TOKEN", ""),
            api_url=get("GITHUB_API_URL") or DEFAULT_API_URL,
            step_summary=get("GITHUB_STEP_SUMMARY"),
            output=get("GITHUB_OUTPUT"),
            repository=get("GITHUB_REPOSITORY"),
            repository_owner=get("GITHUB_REPOSITORY_OWNER"),
            sha=get("GITHUB_SHA"),
            actor=get("GITHUB_ACTOR"),
        )

    def posting(self) -> dict[str, str | None]:
        """What posting to GitHub needs: `token=`, `api_url=`, `step_summary=`."""
        return {"token": self.token, "api_url": self.api_url, "step_summary": self.step_summary}

    def write_outputs(self, **values: str) -> None:
        """Append `name=value` lines to the step's outputs (nothing outside Actions)."""
        if self.output:
            with open(self.output, "a", encoding="utf-8") as stream:
                for name, value in values.items():
                    stream.write(f"{name}={value}\n")
