"""`shenbao web` (the console) and `shenbao user add|list|remove` (who may log in to it)."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys

from sqlmodel import Session

from ..explain import shanghai_time
from ..storage.models import now
from ..storage.states import UserRole
from ..web.words import ROLE_WORDS
from .common import say, staff_runtime
from .exits import EXIT_OK, EnvironmentProblem, UsageError

# The web stack (Flask, waitress) and password hashing (argon2) are imported by the commands that use them,
# so that `shenbao run` and the other commands do not carry them.


def run_web(args: argparse.Namespace) -> int:
    from ..web.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime = staff_runtime(args)
    try:
        serve(runtime)
    except OSError as error:  # the address is taken or not ours
        raise EnvironmentProblem(f"cannot listen on {runtime.settings.web.listen}: {error}") from error
    return EXIT_OK


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password on: use --password-stdin")
    first = getpass.getpass("密码：")
    if getpass.getpass("再输入一次：") != first:
        raise UsageError("两次输入的密码不一致")
    return first


def run_user_add(args: argparse.Namespace) -> int:
    from ..app.accounts import AccountError, add_user

    runtime = staff_runtime(args)
    password = _password(args)
    with Session(runtime.engine) as session:
        try:
            added = add_user(session, args.name, password, UserRole(args.role), now())
        except AccountError as error:
            raise UsageError(str(error)) from error
        session.commit()
    say(args, {"user": added.name, "role": added.role.value}, f"已添加用户 {added.name}（{ROLE_WORDS[added.role]}）")
    return EXIT_OK


def run_user_list(args: argparse.Namespace) -> int:
    from ..app.accounts import users

    runtime = staff_runtime(args)
    with Session(runtime.engine) as session:
        found = users(session)
    if args.json:
        for person in found:
            say(args, {"user": person.name, "role": person.role.value, "created": person.created_at.isoformat()}, "")
        return EXIT_OK
    for person in found:
        print(f"{person.name}\t{ROLE_WORDS[person.role]}\t{shanghai_time(person.created_at)}")
    if not found:
        print("还没有用户：shenbao user add NAME --role staff")
    return EXIT_OK


def run_user_remove(args: argparse.Namespace) -> int:
    from ..app.accounts import AccountError, remove_user

    runtime = staff_runtime(args)
    with Session(runtime.engine) as session:
        try:
            remove_user(session, args.name)
        except AccountError as error:
            raise UsageError(str(error)) from error
        session.commit()
    say(args, {"removed": args.name}, f"已删除用户 {args.name}：其登录即时失效")
    return EXIT_OK
