"""The lexical agreement check a semantic cache hit must pass: both directions of each pair."""

from __future__ import annotations

import pytest

from assistant.accounting.agreement import questions_agree


@pytest.mark.parametrize(
    ("a", "b", "agree"),
    [
        ("convert celsius to fahrenheit", "How do I convert Celsius to Fahrenheit?", True),
        ("convert celsius to fahrenheit", "convert fahrenheit to celsius", False),
        ("convert celsius to fahrenheit", "convert kelvin to celsius", False),
        ("what does `Router.route` do?", "explain Router.route", True),
        ("what does Router.route do?", "what does router.route do?", False),
        ("why is my test failing with KeyError", "why does my test fail with a KeyError", True),
        ("why does it work", "why doesn't it work", False),
        ("sort a list", "sort a list descending", False),
        ("parse JSON", "parse json", True),
        # identifiers and numbers are an ordered sequence: swapping them changes the question
        ("Why does json.dumps call default_encoder?", "Why does default_encoder call json.dumps?", False),
        ("Replace load_config with read_config", "Replace read_config with load_config", False),
        ("round 7 up to 10", "round 10 up to 7", False),
        ("Why does `json.dumps` call default_encoder?", "why does json.dumps call default_encoder", True),
        ("move make_app and run_app to server.py", "move make_app, run_app and make_app to server.py", True),
        # "n't" and "not" are one negation marker, counted per clause, and never a content word
        ("Why does shutil.copy not keep the permissions?", "why doesn't shutil.copy keep the permissions?", True),
        ("why is the progress bar not updating", "why isn't the progress bar updating", True),
        ("why can't pip find the wheel", "why can pip not find the wheel", True),
        ("why won't the server stop", "why will the server not stop", True),
        ("why doesnt the regex match", "why does the regex not match", True),
        ("why didn't the hook run", "why did the hook not run", True),
        ("why doesn't shutil.copy keep the permissions", "why does shutil.copy keep the permissions", False),
        ("why isn't the progress bar updating", "why is the progress bar updating", False),
        ("why does the build fail when the cache is not warm", "why does the build not fail when the cache is warm",
         False),
        ("why does the worker not flush and close", "why does the worker flush and not close", False),
        ("why does the loop never exit", "why doesn't the loop exit", False),
        ("why can't I pickle a lambda", "why shouldn't I pickle a lambda", False),
        ("how can I pickle a lambda", "how do I pickle a lambda", True),
        # contractions and possessives are expanded before stop words are dropped
        ("what's the difference between a set and a frozenset", "what is the difference between a set and a frozenset",
         True),
        ("how's the wheel tag chosen", "how is the wheel tag chosen", True),
        ("whats the point of __slots__", "what's the point of __slots__", True),
        ("thats why it's slow", "that is why it is slow", True),
        ("I've got a stale lock file, what's wrong", "I have got a stale lock file, what is wrong", True),
        ("what is the logger's level", "what is the logger level", True),
        ("what's the list's length", "what's the tuple's length", False),
        # a consistent light stemmer: inflections of one word share a stem, other words do not
        ("when does int() raise ValueError", "when does int() raises ValueError", True),
        ("why was ValueError raised here", "why is ValueError raising here", True),
        ("why does the counter raise", "why does the counter rise", False),
        ("list the files in a folder", "list the filters in a folder", False),
        ("list the files in a folder", "list the file in a folder", True),
        ("which entries are sorted first", "which entries are sorting first", True),
        ("why do the caches grow", "why does the cache grow", True),
        ("how many matches does re.findall return", "how many match does re.findall return", True),
        ("why are the queries slow", "why is the query slow", True),
        ("why do the queries time out", "why do the quotas time out", False),
        ("how are the tags mapped", "how are the tags mapping", True),
        ("read a file", "write a file", False),
        # "use"/"using" and greetings or thanks frame a question, like "with" does
        ("how do I use heapq to keep the three largest items", "keep the three largest items with heapq", False),
        ("how do I use heapq to merge sorted lists", "with heapq, how do I merge sorted lists", True),
        ("merge sorted lists using heapq", "merge sorted lists with heapq", True),
        ("how do I use heapq.merge", "how do I heapq.merge", True),
        ("hey, how do I strip trailing whitespace? thanks!", "how do I strip trailing whitespace", True),
        ("thank you, and how do I strip trailing whitespace please", "how do I strip trailing whitespace", True),
        ("what does the scheduler use", "what does the scheduler do", False),
        ("how do I stop using setup.py", "how do I stop setup.py", False),
        ("how do I install requests", "how do I use requests", False),
    ],
)
def test_questions_agree(a: str, b: str, agree: bool) -> None:
    assert questions_agree(a, b) is agree
    assert questions_agree(b, a) is agree
