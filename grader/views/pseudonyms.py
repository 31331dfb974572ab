"""Pseudonyms for the leaderboard: `calm-otter-4821`, the same for a student all course long,
derived with HMAC-SHA256 from the course's secret, so that nobody without the secret can tell
whose it is (or try every login of the class to find out).

The secret comes from the environment (GRADER_COURSE_SECRET, a GitHub Actions secret), never
from course.toml: a file the students may read cannot hold it. A course with its own secret
has its own pseudonyms. Stdlib only: the posting jobs import this.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from grader.course.config import CourseConfig
from grader.errors import GraderError

SECRET_VARIABLE = "GRADER_COURSE_SECRET"
# Fixed lists: changing a word renames every student. 128 x 128 x 10,000 names, so that two of
# 300 students share one with a chance of about 1 in 3,600.
ADJECTIVES = """
amber azure bold brave bright brisk calm clever cosmic crisp curious daring dapper deft eager
early earnest easy epic fair fancy fast fearless fine firm fluent frank free fresh gentle giant
glad golden grand green happy hardy hasty hazel honest humble icy jolly keen kind lively lucky
lunar mellow merry mighty misty modest noble nimble neat odd olive patient peppy plucky polite
proud quick quiet rapid rare ready regal rosy royal rustic sandy scarlet serene sharp shy silent
silver simple sleek smart snowy solar sonic spry steady stellar stoic sturdy sunny super swift
tidy tiny tranquil true upbeat urban valiant vast velvet vivid warm wary whimsical wild windy
wise witty young zany zealous zesty agile breezy cheery cozy dreamy dusky elated fiery frosty
gallant jaunty placid coral lucid
""".split()  # noqa: SIM905 - a word list reads better as words
ANIMALS = """
aardvark albatross alpaca antelope badger bat beaver bison bobcat buffalo camel canary caribou
cat cheetah chinchilla cobra condor cougar coyote crab crane cricket crow deer dingo dolphin
donkey dove dragonfly duck eagle eel egret elephant elk emu falcon ferret finch flamingo fox frog
gazelle gecko gerbil gibbon giraffe goat goose gopher gorilla grouse gull hamster hare hawk
hedgehog heron hippo hornet horse hyena ibis iguana impala jackal jaguar jay kangaroo kestrel
kingfisher kiwi koala lark lemur leopard lion lizard llama lobster lynx macaw magpie mallard
manatee marmot meerkat mink mole mongoose moose moth narwhal newt ocelot octopus okapi orca osprey
ostrich otter owl ox panda panther parrot pelican penguin pheasant pigeon puffin puma quail rabbit
raccoon raven robin salmon seal shark sparrow squid stork swan tapir tiger toucan
""".split()  # noqa: SIM905 - a word list reads better as words


def pseudonym(secret: str, login: str) -> str:
    """The student's name on the leaderboard. GitHub logins ignore case, and so does this."""
    digest = hmac.new(
        secret.encode(), b"leaderboard\0" + login.lower().encode(), hashlib.sha256
    ).digest()
    number = int.from_bytes(digest[2:6], "big") % 10_000
    return f"{ADJECTIVES[digest[0] % 128]}-{ANIMALS[digest[1] % 128]}-{number:04d}"


def course_secret(required_for: str | None = None) -> str | None:
    """The course's secret from the environment; with `required_for`, its absence is an error
    that says what needs it."""
    secret = os.environ.get(SECRET_VARIABLE, "").strip() or None
    if secret is None and required_for:
        raise GraderError(
            f"{required_for} needs the course's secret in {SECRET_VARIABLE} (a repository or "
            f"organisation secret named by course.toml's ci.course_secret; any long random "
            f"string, e.g. `openssl rand -hex 32`)"
        )
    return secret


class Names:
    """How the leaderboard names students: pseudonyms (with the course's secret) or, only when
    course.toml says `leaderboard.names = "logins"`, their logins."""

    def __init__(self, logins: bool, secret: str | None = None) -> None:
        if not logins and not secret:
            raise GraderError("pseudonyms need the course's secret")
        self.logins = logins
        self._secret = secret

    def __call__(self, login: str) -> str:
        return login if self.logins else pseudonym(self._secret or "", login)


def leaderboard_names(config: CourseConfig) -> Names | None:
    """How the leaderboard names students; None: pseudonyms, but no secret to derive them."""
    logins = config.leaderboard.names == "logins"
    secret = course_secret()
    return Names(logins, secret) if logins or secret else None
