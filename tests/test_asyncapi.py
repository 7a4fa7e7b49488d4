"""The AsyncAPI document of the MQTT contract: generated from the models, checked in, and valid.

Validation is the official AsyncAPI parser (``@asyncapi/parser`` from npm: the AsyncAPI 3.0 JSON
schema of ``@asyncapi/specs`` plus the parser's Spectral rules), run by Node on the checked-in
file; ``make test`` installs it under ``var/node`` (``make node-deps``). Each example message is
also checked against its own payload schema and parsed by the consumers' model.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema_rs
import pytest

from edge_runtime.asyncapi import asyncapi_document, asyncapi_json
from edge_runtime.messages import parse_message

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "asyncapi.json"
NODE_PREFIX = ROOT / "var" / "node"
VALIDATE = ROOT / "tests" / "asyncapi_validate.cjs"


def validate(path: Path) -> dict:
    """Diagnostics of the official parser for the document at ``path``."""
    node = shutil.which("node")
    assert node, "Node.js is needed to run the AsyncAPI parser (apt-get install nodejs npm)"
    assert (NODE_PREFIX / "node_modules" / "@asyncapi" / "parser").is_dir(), (
        "the AsyncAPI parser is not installed: run `make node-deps`"
    )
    done = subprocess.run(
        [node, str(VALIDATE), str(NODE_PREFIX), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def errors(report: dict) -> list[dict]:
    return [d for d in report["diagnostics"] if d["severity"] in ("error", "warning")]


def test_checked_in_document_is_the_generated_one():
    assert DOC.read_text() == asyncapi_json(), (
        "docs/asyncapi.json is stale: regenerate it with "
        "`python -m edge_runtime.asyncapi docs/asyncapi.json`"
    )


def test_document_is_valid_asyncapi_3():
    report = validate(DOC)
    assert errors(report) == [], errors(report)
    print(f"AsyncAPI validation: parser {report['parser']}, specs {report['specs']}:", report)


def test_the_validator_refuses_a_broken_document(tmp_path):
    doc = asyncapi_document()
    doc["operations"]["receiveEvents"]["action"] = "publish"  # AsyncAPI 2 wording
    del doc["channels"]["stockout"]["address"]
    doc["channels"]["stockout"]["parameters"]["store"]["enum"] = "S1"  # not a list
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(doc))
    assert any(d["severity"] == "error" for d in validate(broken)["diagnostics"])


def test_every_kind_has_a_channel_an_operation_and_a_valid_example():
    doc = asyncapi_document()
    schemas = doc["components"]["schemas"]
    for name, message in doc["components"]["messages"].items():
        ref = message["payload"]["$ref"]
        schema = {**schemas[ref.rsplit("/", 1)[-1]], "components": {"schemas": schemas}}
        validator = jsonschema_rs.Draft7Validator(schema)
        for example in message["examples"]:
            problems = [e.message for e in validator.iter_errors(example["payload"])]
            assert problems == [], (name, problems)
            if name not in ("event", "eventBatch"):
                assert parse_message(example["payload"]).kind == name
    addresses = {c["address"] for c in doc["channels"].values()}
    assert "shelfcast/{store}/deadletters" in addresses
    assert "shelfcast/{store}/events/{source}" in addresses
    actions = {op["action"] for op in doc["operations"].values()}
    assert actions == {"send", "receive"}


def test_example_payload_breaking_its_schema_is_caught():
    doc = asyncapi_document()
    schemas = doc["components"]["schemas"]
    schema = {**schemas["StockoutAlert"], "components": {"schemas": schemas}}
    bad = {**doc["components"]["messages"]["stockout"]["examples"][0]["payload"]}
    bad["reason_codes"] = ["atp_gone"]
    with pytest.raises(jsonschema_rs.ValidationError):
        jsonschema_rs.Draft7Validator(schema).validate(bad)
