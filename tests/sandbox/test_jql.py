"""The JQL engine of the Jira stand-in: results, ordering and Jira's error messages.

Expected messages are Jira's own wording, taken from Jira's func tests (TestJqlParsing,
TestSystemFieldLiterals, TestAdvancedValidation) and validator unit tests, and from Atlassian's REST docs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sh2jira.sandbox.jql import JqlError, compile_jql, quote
from sh2jira.sandbox.jql_errors import SYNTAX_PREFIX
from sh2jira.sandbox.jql_lexer import tokenize

NOW = datetime(2024, 5, 10, 12, 30, tzinfo=UTC)


def _doc(key: str, issue_id: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": issue_id, "key": key, "project": key.split("-")[0], "summary": "", "description": "",
        "labels": [], "status": "To Do", "statusCategory": "new", "resolution": None, "priority": "Medium",
        "issuetype": "Bug", "assignee": None, "reporter": "svc-sh2jira", "created": NOW, "updated": NOW,
        "resolutiondate": None, "component": [],
    }
    return base | fields


DOCS = [
    _doc("SEC-1", "10001", summary="S3 bucket allows public read",
         description="Bucket policy grants s3:GetObject to everyone", labels=["sh2jira", "sh2jira-fid-aaa"],
         priority="High", created=NOW - timedelta(days=3), updated=NOW - timedelta(hours=1), component=["s3"]),
    _doc("SEC-2", "10002", summary="Root account has access keys", status="Done", statusCategory="done",
         resolution="Done", priority="Highest", issuetype="Task", assignee="alice",
         created=NOW - timedelta(days=10), updated=NOW - timedelta(days=2),
         resolutiondate=NOW - timedelta(days=2), component=["iam"]),
    _doc("SEC-10", "10010", summary="Security group allows SSH from 0.0.0.0/0",
         description="Port 22 open to the world", labels=["sh2jira", "Network"], status="In Progress",
         statusCategory="indeterminate", priority="Low", assignee="bob", reporter="carol",
         created=NOW - timedelta(minutes=30), component=["ec2", "vpc"]),
    _doc("OPS-3", "20003", summary="Rotate credentials", description=None, labels=["ops", "it's", "back\\slash"],
         status="Closed", statusCategory="done", resolution="Won't Do", issuetype="Task", assignee="alice",
         reporter=None, created=datetime(2024, 1, 15, 9, 0, tzinfo=UTC),
         updated=datetime(2024, 2, 1, 10, 0, tzinfo=UTC), resolutiondate=datetime(2024, 2, 1, 10, 0, tzinfo=UTC)),
    _doc("SEC-11", "10011", summary='Quote "test" value', description="Multi\nline",
         labels=['a" OR project != "X'], priority="Lowest", created=datetime(2024, 5, 1, tzinfo=UTC),
         updated=datetime(2024, 5, 1, 8, 15, tzinfo=UTC)),
]
ALL = ["SEC-11", "SEC-10", "SEC-2", "SEC-1", "OPS-3"]


def search(jql: str) -> list[str]:
    query = compile_jql(jql, now=NOW)
    return [doc["key"] for doc in query.sort([doc for doc in DOCS if query.matches(doc)])]


def error(jql: str) -> list[str]:
    with pytest.raises(JqlError) as caught:
        compile_jql(jql, now=NOW)
    return caught.value.messages


RESULTS = [
    # project, key/id/issue/issuekey (aliases), including ordering of keys by number
    ("", ALL),
    ("project = SEC", ["SEC-11", "SEC-10", "SEC-2", "SEC-1"]),
    ("PROJECT = sec", ["SEC-11", "SEC-10", "SEC-2", "SEC-1"]),
    ("project != SEC", ["OPS-3"]),
    ("project not in (SEC, OPS)", []),
    ("project is EMPTY", []),
    ("key = SEC-10", ["SEC-10"]),
    ("issuekey = sec-10", ["SEC-10"]),
    ("id = 10002", ["SEC-2"]),
    ("issue in (SEC-1, 10010, OPS-3)", ["SEC-10", "SEC-1", "OPS-3"]),
    ("key not in (SEC-1, SEC-2)", ["SEC-11", "SEC-10", "OPS-3"]),
    ("key != SEC-1", ["SEC-11", "SEC-10", "SEC-2", "OPS-3"]),
    ("key > SEC-2", ["SEC-11", "SEC-10"]),
    ("key >= SEC-2", ["SEC-11", "SEC-10", "SEC-2"]),
    ("key < SEC-10", ["SEC-2", "SEC-1"]),
    ("key <= SEC-1", ["SEC-1"]),
    ("id > 10002", ["SEC-11", "SEC-10", "OPS-3"]),
    # labels: multi-value; != and NOT IN never match an issue without labels
    ("labels = sh2jira", ["SEC-10", "SEC-1"]),
    ("labels = NETWORK", ["SEC-10"]),
    ("labels != sh2jira", ["SEC-11", "OPS-3"]),
    ("labels not in (sh2jira, ops)", ["SEC-11"]),
    ("labels in (ops, EMPTY)", ["SEC-2", "OPS-3"]),
    ("labels is EMPTY", ["SEC-2"]),
    ("labels = EMPTY", ["SEC-2"]),
    ("labels = null", ["SEC-2"]),
    ("labels is not EMPTY", ["SEC-11", "SEC-10", "SEC-1", "OPS-3"]),
    ("labels != EMPTY", ["SEC-11", "SEC-10", "SEC-1", "OPS-3"]),
    ("NOT labels = sh2jira", ["SEC-11", "OPS-3"]),
    ("NOT labels is EMPTY", ["SEC-11", "SEC-10", "SEC-1", "OPS-3"]),
    # status, statusCategory by key, name and id
    ('status = "In Progress"', ["SEC-10"]),
    ("status in ('To Do', Done)", ["SEC-11", "SEC-2", "SEC-1"]),
    ("status != Done", ["SEC-11", "SEC-10", "SEC-1", "OPS-3"]),
    ("statusCategory = done", ["SEC-2", "OPS-3"]),
    ("statuscategory = Done", ["SEC-2", "OPS-3"]),
    ('statusCategory = "To Do"', ["SEC-11", "SEC-1"]),
    ("statusCategory in ('In Progress', new)", ["SEC-11", "SEC-10", "SEC-1"]),
    ("statusCategory != done", ["SEC-11", "SEC-10", "SEC-1"]),
    ("statusCategory = 3", ["SEC-2", "OPS-3"]),
    # resolution, with Unresolved meaning EMPTY
    ("resolution = Unresolved", ["SEC-11", "SEC-10", "SEC-1"]),
    ('resolution = "unresolved"', ["SEC-11", "SEC-10", "SEC-1"]),
    ("resolution IS EMPTY", ["SEC-11", "SEC-10", "SEC-1"]),
    ("resolution != Unresolved", ["SEC-2", "OPS-3"]),
    ("resolution is not empty", ["SEC-2", "OPS-3"]),
    ("resolution = Done", ["SEC-2"]),
    ("resolution != Done", ["OPS-3"]),
    ('resolution in ("Won\'t Do", Unresolved)', ["SEC-11", "SEC-10", "SEC-1", "OPS-3"]),
    # priority, including Jira's relational search by priority order
    ("priority = High", ["SEC-1"]),
    ("priority > Medium", ["SEC-2", "SEC-1"]),
    ("priority <= Low", ["SEC-11", "SEC-10"]),
    ("priority in (low, LOWEST)", ["SEC-11", "SEC-10"]),
    # issuetype and its alias, users, components
    ("issuetype = Bug", ["SEC-11", "SEC-10", "SEC-1"]),
    ("type = task", ["SEC-2", "OPS-3"]),
    ("assignee = alice", ["SEC-2", "OPS-3"]),
    ("assignee is EMPTY", ["SEC-11", "SEC-1"]),
    ("assignee != alice", ["SEC-10"]),
    ("assignee in (bob, EMPTY)", ["SEC-11", "SEC-10", "SEC-1"]),
    ("reporter = svc-sh2jira", ["SEC-11", "SEC-2", "SEC-1"]),
    ("reporter is EMPTY", ["OPS-3"]),
    ("component = ec2", ["SEC-10"]),
    ("component in (s3, iam)", ["SEC-2", "SEC-1"]),
    ("component is EMPTY", ["SEC-11", "OPS-3"]),
    ("component != vpc", ["SEC-2", "SEC-1"]),
    # text search: words, phrase, wildcards, exclusion, EMPTY, all-text
    ("summary ~ bucket", ["SEC-1"]),
    ("summary ~ BUCKET", ["SEC-1"]),
    ('summary ~ "public bucket"', ["SEC-1"]),
    ('summary ~ "\\"bucket allows\\""', ["SEC-1"]),
    ('summary ~ "\\"allows bucket\\""', []),
    ("summary ~ 'sec*'", ["SEC-10"]),
    ("summary ~ 'acc?ss'", ["SEC-2"]),
    ("summary ~ 'allows -ssh'", ["SEC-1"]),
    ("summary !~ bucket", ["SEC-11", "SEC-10", "SEC-2", "OPS-3"]),
    ("NOT summary ~ bucket", ["SEC-11", "SEC-10", "SEC-2", "OPS-3"]),
    ("description ~ port", ["SEC-10"]),
    ("description is EMPTY", ["SEC-2", "OPS-3"]),
    ("description ~ EMPTY", ["SEC-2", "OPS-3"]),
    ("description !~ bucket", ["SEC-11", "SEC-10"]),
    ("text ~ world", ["SEC-10"]),
    ("text ~ rotate", ["OPS-3"]),
    ("summary ~ Rotate\\ credentials", ["OPS-3"]),
    # dates: relative periods, absolute formats, epoch millis, functions, minute precision
    ("created > -1d", ["SEC-10"]),
    ("created >= -4d", ["SEC-10", "SEC-1"]),
    ("created < -4d", ["SEC-11", "SEC-2", "OPS-3"]),
    ("created >= '-1w 2d'", ["SEC-10", "SEC-1"]),
    ("created > '5m'", []),
    ('created >= "2024-05-01"', ["SEC-11", "SEC-10", "SEC-1"]),
    ('created > "2024/05/01"', ["SEC-10", "SEC-1"]),
    ('created = "2024-05-01 00:00"', ["SEC-11"]),
    ('createdDate = "2024/05/01"', ["SEC-11"]),
    ("created = 1714521600000", ["SEC-11"]),
    ("created in ('2024-05-01', '2024-01-15 09:00')", ["SEC-11", "OPS-3"]),
    ("updated >= '2024-05-10 12:30'", ["SEC-10"]),
    ("updated < -1h", ["SEC-11", "SEC-2", "OPS-3"]),
    ("updated <= -1h", ["SEC-11", "SEC-2", "SEC-1", "OPS-3"]),
    ("updatedDate >= now()", ["SEC-10"]),
    ("created > now()", []),
    ("resolved >= startOfDay(-2)", ["SEC-2"]),
    ("resolutiondate is EMPTY", ["SEC-11", "SEC-10", "SEC-1"]),
    ("resolutiondate != '2024-02-01 10:00'", ["SEC-2"]),
    ("NOT resolutiondate > '2024-03-01'", ["OPS-3"]),
    ("created >= startOfMonth()", ["SEC-11", "SEC-10", "SEC-1"]),
    ("created >= startOfMonth(-1)", ["SEC-11", "SEC-10", "SEC-2", "SEC-1"]),
    ("created < startOfYear()", []),
    ("created > endOfDay(-1)", ["SEC-10"]),
    ("created <= endOfMonth() AND created >= startOfYear('+14d')", ["SEC-11", "SEC-10", "SEC-2", "SEC-1", "OPS-3"]),
    ("created <= endOfYear(-1)", []),
    # precedence: NOT > AND > OR, parentheses, symbolic operators, keyword case
    ("project = OPS OR labels = sh2jira AND priority = Low", ["SEC-10", "OPS-3"]),
    ("(project = OPS OR labels = sh2jira) AND priority = Low", ["SEC-10"]),
    ("NOT project = OPS AND priority = High", ["SEC-1"]),
    ("NOT (project = OPS OR priority = High)", ["SEC-11", "SEC-10", "SEC-2"]),
    ("! labels = ops", ["SEC-11", "SEC-10", "SEC-1"]),
    ("not not labels = ops", ["OPS-3"]),
    ("project = SEC && labels = sh2jira || key = OPS-3", ["SEC-10", "SEC-1", "OPS-3"]),
    ("project = SEC & status = Done | type = Task", ["SEC-2", "OPS-3"]),
    ("Project = SEC aNd LABELS = sh2jira order BY Key asc", ["SEC-1", "SEC-10"]),
    # quoting and escapes: hostile values stay one value
    ("labels = 'sh2jira-fid-aaa'", ["SEC-1"]),
    ('labels = "a\\" OR project != \\"X"', ["SEC-11"]),
    ("labels = 'a\" OR project != \"X'", ["SEC-11"]),
    ('labels = "\\u0073h2jira"', ["SEC-10", "SEC-1"]),
    ("labels = sh2\\u006aira", ["SEC-10", "SEC-1"]),
    ("labels = 'it\\'s'", ["OPS-3"]),
    ('labels = "it\'s"', ["OPS-3"]),
    ('labels = "back\\\\slash"', ["OPS-3"]),
    # ORDER BY: field defaults (dates and priority descend), empties last ascending, aliases
    ("ORDER BY key", ["OPS-3", "SEC-1", "SEC-2", "SEC-10", "SEC-11"]),
    ("order by id desc", ALL),
    ("order by created", ["SEC-10", "SEC-1", "SEC-11", "SEC-2", "OPS-3"]),
    ("order by created asc", ["OPS-3", "SEC-2", "SEC-11", "SEC-1", "SEC-10"]),
    ("order by priority", ["SEC-2", "SEC-1", "OPS-3", "SEC-10", "SEC-11"]),
    ("order by priority asc", ["SEC-11", "SEC-10", "OPS-3", "SEC-1", "SEC-2"]),
    ("order by resolutiondate desc", ["SEC-11", "SEC-10", "SEC-1", "SEC-2", "OPS-3"]),
    ("order by resolved asc", ["OPS-3", "SEC-2", "SEC-11", "SEC-10", "SEC-1"]),
    ("order by assignee asc", ["SEC-2", "OPS-3", "SEC-10", "SEC-11", "SEC-1"]),
    ("order by status", ["SEC-11", "SEC-1", "SEC-10", "OPS-3", "SEC-2"]),
    ("order by summary", ["SEC-11", "SEC-2", "OPS-3", "SEC-1", "SEC-10"]),
    ("order by type, key", ["SEC-1", "SEC-10", "SEC-11", "OPS-3", "SEC-2"]),
    ("project = SEC order by updated asc, key desc", ["SEC-11", "SEC-2", "SEC-1", "SEC-10"]),
]


@pytest.mark.parametrize(("jql", "expected"), RESULTS)
def test_query_results_and_order(jql: str, expected: list[str]) -> None:
    assert search(jql) == expected


SYNTAX_ERRORS = [
    ("comment ~ 'test", "The quoted string 'test' has not been completed. (line 1, character 11)"),
    ('priority="test\nword', "The quoted string 'test word' has not been completed. (line 1, character 10)"),
    ("comment ~ '", "The quoted string has not been completed. (line 1, character 11)"),
    ("comme\\unt ~ 'test", "'\\un' is an illegal JQL escape sequence. The valid escape sequences are \\', \\\", "
     "\\t, \\n, \\r, \\\\, '\\ ' and \\uXXXX. (line 1, character 6)"),
    ("status = open\\", "The escape sequence has not been completed. The valid escape sequences are \\', \\\", "
     "\\t, \\n, \\r, \\\\, '\\ ' and \\uXXXX. (line 1, character 14)"),
    ("mine{www = qwwr", "The character '{' is a reserved JQL character. You must enclose it in a string or use the "
     "escape '\\u007b' instead. (line 1, character 5)"),
    ("created > 2024/05/01", "The character '/' is a reserved JQL character. You must enclose it in a string or "
     "use the escape '\\u002f' instead. (line 1, character 15)"),
    ("minewww =\u007fqwwr", "The character 'U+007F' on line 1 at position 10 must be escaped. Use the escape "
     "'\\u007f' instead. (line 1, character 10)"),
    ('mqwwr="\u007f this is broken"', "The character 'U+007F' on line 1 at position 8 must be escaped. Use the "
     "escape '\\u007f' instead. (line 1, character 8)"),
    ("aaaaa=-3482094382084092840932809482", "'-3482094382084092840932809482' is not a valid number. Numbers must "
     "be between -9,223,372,036,854,775,808 and 9,223,372,036,854,775,807. (line 1, character 7)"),
    ("summary ~ select", "'select' is a reserved JQL word. You must surround it in quotation marks to use it in a "
     "query. (line 1, character 11)"),
    ("project = SET", "'SET' is a reserved JQL word. You must surround it in quotation marks to use it in a query. "
     "(line 1, character 11)"),
    ("a =b order", "Expecting 'by' before the end of the query."),
    ("a =b order summary", "Expecting 'by' but got 'summary'. (line 1, character 12)"),
    ("a =b order by", "Expecting a field name at the end of the query."),
    ("a =b order by asc", "Expecting a field name but got 'asc'. You must surround 'asc' in quotation marks to use "
     "it as a field name. (line 1, character 15)"),
    ("a =b order by ajsks blah", "Expecting either 'ASC' or 'DESC' but got 'blah'. (line 1, character 21)"),
    ("order by a desc d", "Expecting ',' but got 'd'. (line 1, character 17)"),
    ('a =b order by "" desc', "A field name cannot be empty. (line 1, character 15)"),
    ("'' = c", "A field name cannot be empty. (line 1, character 1)"),
    ("a = ''()", "A function name cannot be empty. (line 1, character 5)"),
    ("a", "Expecting operator before the end of the query. The valid operators are '=', '!=', '<', '>', '<=', "
     "'>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'."),
    ("a blah >", "Expecting operator but got 'blah'. The valid operators are '=', '!=', '<', '>', '<=', '>=', "
     "'~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'. (line 1, character 3)"),
    ("a =a and j not is empty", "Expecting 'IN' but got 'is'. (line 1, character 16)"),
    ("a =a and j is ! empty", "Expecting 'NOT' but got '!'. (line 1, character 15)"),
    ("cf", "Expecting '[' before the end of the query."),
    ("a = b and not (cf = 6)", "Expecting '[' but got '='. (line 1, character 19)"),
    ("cf[", "Expecting a custom field id (a positive number) before the end of the query."),
    ("cf[29829k] = ", "Expecting a custom field id (a positive number) but got '29829k'. (line 1, character 4)"),
    ("cf[29829 = world", "Expecting ']' but got '='. (line 1, character 10)"),
    ("a = func(", "Expecting ')' before the end of the query."),
    ("a = func(, and not (a = x)", "Expecting ')' but got ','. (line 1, character 10)"),
    ("bas=func(bad,)", "Function argument must be specified. (line 1, character 14)"),
    ("bas=func(bad,", "Expecting a function argument at the end of the query."),
    ("k = func(!", "Expecting a function argument but got '!'. You must surround '!' in quotation marks to use it "
     "as an argument. (line 1, character 10)"),
    ("k = func(abc, jk!)", "Expecting ')' or ',' but got '!'. (line 1, character 17)"),
    ("(a=b and c = d", "Expecting ')' before the end of the query."),
    ("b in ((12, (288)", "Expecting ')' before the end of the query."),
    ("abc IN ((foo) abc = a", "Expecting ')' but got 'abc'. (line 1, character 15)"),
    ("a in (b c)", "Expecting ',' or ')' but got 'c'. (line 1, character 9)"),
    ("a=", "Expecting either a value, list or function before the end of the query."),
    ("a=!", "Expecting either a value, list or function but got '!'. You must surround '!' in quotation marks to "
     "use it as a value. (line 1, character 3)"),
    ("project = AND", "Expecting either a value, list or function but got 'AND'. You must surround 'AND' in "
     "quotation marks to use it as a value. (line 1, character 11)"),
    ("a=b c=d", "Expecting either 'OR' or 'AND' but got 'c'. (line 1, character 5)"),
    ("a=b !c=d", "Expecting either 'OR' or 'AND' but got '!'. (line 1, character 5)"),
    ("a = ((c,d), d, e, f, yyy) and", "Expecting a field name at the end of the query."),
    (", a = b", "Expecting a field name but got ','. You must surround ',' in quotation marks to use it as a "
     "field name. (line 1, character 1)"),
    ("[brenden] = a", "Expecting a field name but got '['. Did you mean 'cf['? (line 1, character 1)"),
    ("a was", "Expecting either a value, list or function before the end of the query."),
    ('status = "Open" by admin', 'The EQUALS operator does not support the use of the by "admin" predicate.'),
    ("project = SEC\nAND x", "Expecting operator before the end of the query. The valid operators are '=', '!=', "
     "'<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'."),
    ("project = SEC\n  AND status = ) ", "Expecting either a value, list or function but got ')'. You must "
     "surround ')' in quotation marks to use it as a value. (line 2, character 16)"),
]


@pytest.mark.parametrize(("jql", "message"), SYNTAX_ERRORS)
def test_syntax_errors_carry_jiras_wording_and_position(jql: str, message: str) -> None:
    assert error(jql) == [SYNTAX_PREFIX + message]


VALIDATION_ERRORS = [
    ("summary = x", ["The operator '=' is not supported by the 'summary' field."]),
    ("summary in test", ["Operator 'in' does not support the non-list value '\"test\"' for field 'summary'."]),
    ("universe = 42", ["Field 'universe' does not exist or you do not have permission to view it."]),
    ("cf[10020] = x", ["Field 'cf[10020]' does not exist or you do not have permission to view it."]),
    ("labels = (a, b)", ["Operator '=' does not support the list value '(\"a\", \"b\")' for field 'labels'."]),
    ("labels not in 10", ["Operator 'not in' does not support the non-list value '10' for field 'labels'."]),
    ("created > EMPTY", ["Operator '>' does not support the empty value representation 'EMPTY' for field "
                         "'created'."]),
    ("labels is x", ["Operator 'is' does not support searching for non-empty values for field 'labels'."]),
    ("labels ~ x", ["The operator '~' is not supported by the 'labels' field."]),
    ("project > SEC", ["The operator '>' is not supported by the 'project' field."]),
    ("statusCategory is EMPTY", ["The operator 'is' is not supported by the 'statusCategory' field."]),
    ("statusCategory = EMPTY", ["The field 'statusCategory' does not support searching for EMPTY values."]),
    ("statusCategory = Blocked", ["The value 'Blocked' does not exist for the field 'statusCategory'."]),
    ("statusCategory = 9", ["A value with ID '9' does not exist for the field 'statusCategory'."]),
    ("key = EMPTY", ["The field 'key' does not support searching for EMPTY values."]),
    ("key is EMPTY", ["The operator 'is' is not supported by the 'key' field."]),
    ("key = foo", ["The issue key 'foo' for field 'key' is invalid."]),
    ("issue = '10000'", ["The issue key '10000' for field 'issue' is invalid."]),
    ("text !~ x", ["The operator '!~' is not supported by the 'text' field."]),
    ("text ~ EMPTY", ["The field 'text' does not support searching for EMPTY values."]),
    ("summary ~ ''", ["The field 'summary' does not support searching for an empty string."]),
    ("description ~ '?'", ["The text query '?' for field 'description' is not allowed to start with '?'."]),
    ("summary ~ '*start'", ["The text query '*start' for field 'summary' is not allowed to start with '*'."]),
    ("description ~ 'BAD +'", ["Unable to parse the text 'BAD +' for field 'description'."]),
    ("summary ~ 'a OR b'", ["Unable to parse the text 'a OR b' for field 'summary'."]),
    ("created <= '17/FAKE/09'", ["Date value '17/FAKE/09' for field 'created' is invalid. Valid formats include: "
                                 "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
                                 "format e.g. '-5d', '4w 2d'."]),
    ("resolved >= '2010/02/35'", ["Date value '2010/02/35' for field 'resolved' is invalid. Valid formats include: "
                                  "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
                                  "format e.g. '-5d', '4w 2d'."]),
    ("created > now(1)", ["Function 'now' expected '0' arguments but received '1'."]),
    ("created > startOfDay(1, 2)", ["Function 'startOfDay' expected between '0' and '1' arguments but received "
                                    "'2'."]),
    ("created > startOfDay('invalid')", ["Duration for function 'startOfDay' should have the format "
                                         "(+/-)n(yMwdm), e.g -1M for 1 month earlier."]),
    ("assignee = currentUser()", ["Unable to find JQL function 'currentUser()'."]),
    ("created > startOfWeek()", ["Unable to find JQL function 'startOfWeek()'."]),
    ("status = now()", ["A value provided by the function 'now' is invalid for the field 'status'."]),
    ("priority > Urgent", ["The value 'Urgent' does not exist for the field 'priority'."]),
    ("status was Open", ["The operator 'was' is not supported by the 'status' field."]),
    ("labels changed", ["The operator 'changed' is not supported by the 'labels' field."]),
    ("resolution > Done", ["The operator '>' is not supported by the 'resolution' field."]),
    ("NOT summary = x", ["The operator '=' is not supported by the 'summary' field."]),
    ("foo = 1 AND bar = 2", ["Field 'foo' does not exist or you do not have permission to view it.",
                             "Field 'bar' does not exist or you do not have permission to view it."]),
    ("order by bogus", ["Not able to sort using field 'bogus'."]),
    ("order by statusCategory", ["Not able to sort using field 'statusCategory'."]),
    ("order by description", ["Field 'description' does not support sorting."]),
    ("order by key, KEY", ["The sort field 'KEY' is referenced multiple times in the JQL sort."]),
    ("order by issuetype, type", ["The sort field 'type' is referenced multiple times in the JQL sort. Field "
                                  "'type' is an alias for field 'issuetype'."]),
    ("labels in x order by nope", ["Operator 'in' does not support the non-list value '\"x\"' for field 'labels'.",
                                   "Not able to sort using field 'nope'."]),
]


@pytest.mark.parametrize(("jql", "messages"), VALIDATION_ERRORS)
def test_validation_errors_carry_jiras_wording(jql: str, messages: list[str]) -> None:
    assert error(jql) == messages


def test_check_values_reports_what_does_not_exist_on_the_site() -> None:
    query = compile_jql("project in (SEC, NOPE) AND key in (SEC-1, SEC-99, 12345) AND status = Bogus "
                        "AND resolution = Unresolved AND assignee = ghost", now=NOW)
    known = {"project": ["SEC", "OPS"], "key": ["SEC-1"], "id": ["10001"], "status": ["To Do", "Done"],
             "resolution": ["Done"]}
    assert query.check_values(known) == [
        "The value 'NOPE' does not exist for the field 'project'.",
        "An issue with key 'SEC-99' does not exist for field 'key'.",
        "A value with ID '12345' does not exist for the field 'key'.",
        "The value 'Bogus' does not exist for the field 'status'.",
    ]
    assert compile_jql("project = sec AND key = sec-1", now=NOW).check_values(known) == []


def test_dates_compare_to_the_minute_like_jiras_index() -> None:
    doc = {"created": datetime(2024, 5, 10, 12, 30, 45, tzinfo=UTC)}
    assert compile_jql("created = '2024-05-10 12:30'", now=NOW).matches(doc)
    assert not compile_jql("created > '2024-05-10 12:30'", now=NOW).matches(doc)
    assert compile_jql("created <= now()", now=NOW + timedelta(seconds=10)).matches(doc)


def test_sort_returns_a_new_list_and_naive_now_is_utc() -> None:
    docs = list(DOCS)
    query = compile_jql("created >= '2024-05-10 12:00'", now=NOW.replace(tzinfo=None))
    assert [doc["key"] for doc in query.sort(docs) if query.matches(doc)] == ["SEC-10"]
    assert docs == DOCS


# --- properties: quoting any value the way Jira does keeps it one value -------------------------------------

_WORD = st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True).filter(lambda w: w not in ("AND", "OR", "NOT"))
_SEPARATOR = st.sampled_from([" ", "  ", ", ", ". ", " / ", "; "])


@given(st.text(max_size=40))
def test_quote_round_trips_through_the_lexer(value: str) -> None:
    tokens = tokenize(quote(value))
    assert [(token.kind, token.text) for token in tokens[:-1]] == [("QSTRING", value)]


@given(value=st.text(min_size=1, max_size=40), other=st.text(max_size=40))
def test_labels_equal_to_any_quoted_value_match_exactly(value: str, other: str) -> None:
    """Labels are never empty in Jira, so the value is at least one character."""
    query = compile_jql(f"labels = {quote(value)} AND project = SEC", now=NOW)
    with_value = {"project": "SEC", "labels": [other, value]}
    assert query.matches(with_value)
    assert query.matches({"project": "SEC", "labels": [other]}) == (other.lower() == value.lower())
    assert not query.matches({"project": "OPS", "labels": [value]})
    assert not compile_jql(f"labels != {quote(value)}", now=NOW).matches(with_value)


@given(st.text(max_size=60))
def test_summary_contains_any_quoted_value_is_never_a_syntax_error(value: str) -> None:
    try:
        compile_jql(f"summary ~ {quote(value)} AND project = SEC", now=NOW)
    except JqlError as rejected:
        assert not any(message.startswith(SYNTAX_PREFIX) for message in rejected.messages)


@given(query_words=st.lists(_WORD, min_size=1, max_size=4), text_words=st.lists(_WORD, max_size=8),
       separators=st.lists(_SEPARATOR, min_size=8, max_size=8))
def test_summary_contains_matches_when_every_word_is_present(
        query_words: list[str], text_words: list[str], separators: list[str]) -> None:
    value = "".join(word + sep for word, sep in zip(query_words, separators, strict=False)).strip(" ,./;")
    summary = " ".join(text_words)
    query = compile_jql(f"summary ~ {quote(value)}", now=NOW)
    present = {word.lower() for word in text_words}
    expected = bool(summary) and all(word.lower() in present for word in query_words)
    assert query.matches({"summary": summary}) == expected
