"""The generated OpenAPI document describes the route exactly as the published contract does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The published contract lives in the workplace's shared/ folder, beside the checkout.
CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "000_61edff620cdf32af.txt"
CONTRACT_STATUSES = {"201", "400", "401", "403", "404", "500"}
PROBLEM_FIELDS = ["type", "title", "status", "detail", "instance"]


@pytest.fixture
def document(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_contract_text_names_what_the_document_describes(document):
    if not CONTRACT.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the published contract is missing: {CONTRACT}")
        pytest.skip("the shared contract is not beside this checkout")
    text = CONTRACT.read_text()
    assert "Endpoint: POST /v1/candidates/job-match" in text
    for field in (
        "candidates",
        "candidates.publicId",
        "additionalNotes",
        "message",
        "jobMatchId",
        *PROBLEM_FIELDS,
    ):
        assert f"`{field}`" in text
    for status in CONTRACT_STATUSES:
        assert f"Response {status}" in text


def test_route_security_request_and_responses(document):
    operation = document["paths"]["/v1/candidates/job-match"]["post"]
    assert document["info"]["version"] == "1.0.0"
    assert document["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    assert operation["security"] == [{"ApiKeyAuth": []}]

    schemas = document["components"]["schemas"]
    request = schemas["JobMatchRequest"]
    assert set(request["properties"]) == {"candidates", "additionalNotes"}
    item = request["properties"]["candidates"]["items"]
    assert item["properties"]["publicId"]["example"] == "ABcd2EFgHIjkLMNOp3QR-S"
    assert request["properties"]["candidates"]["description"] == "A list of candidate public IDs."
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/JobMatchRequest"}

    assert set(operation["responses"]) >= CONTRACT_STATUSES
    created = operation["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/JobMatchCreated"}
    assert list(schemas["JobMatchCreated"]["properties"]) == ["message", "jobMatchId"]
    assert schemas["JobMatchCreated"]["properties"]["jobMatchId"]["example"] == "job-match-7890"

    assert list(schemas["Problem"]["properties"]) == PROBLEM_FIELDS
    examples = {
        "400": ("Invalid Request", "Request body is missing required fields."),
        "401": ("Authentication required", "Invalid API key."),
        "403": ("Forbidden", "You do not have permission to offer candidate services."),
        "404": ("Resource not found", "Candidate with the provided publicId was not found."),
        "500": ("Service Unavailable", "An unexpected error occurred. Please try again later."),
    }
    for status, (title, detail) in examples.items():
        content = operation["responses"][status]["content"]
        assert list(content) == ["application/problem+json"]
        example = content["application/problem+json"]["example"]
        assert example == {
            "type": "https://example.com/probs/doc",
            "title": title,
            "status": int(status),
            "detail": detail,
            "instance": "/v1/candidates?page=1",
        }


def test_swagger_ui_is_served(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
