"""The OpenAPI document describes exactly the admin API's Klein routes."""

from __future__ import annotations

import re

import jsonschema_rs
from twisted.trial.unittest import TestCase

from a3mail.http.admin.api import GROUPS
from a3mail.http.openapi import OPERATIONS, PARAMETERS, document
from a3mail.http.routes import routes_of
from tests.http.support import ApiTestCase


def openapi_path(werkzeug_path: str) -> str:
    """``/users/<user_id>/messages/<int:uid>`` -> ``/users/{user_id}/messages/{uid}``."""
    return re.sub(r"<(?:[^:>]+:)?(\w+)>", r"{\1}", werkzeug_path)


class RouteCoverageTests(TestCase):
    def klein_routes(self) -> dict[tuple[str, str], tuple[str | None, str]]:
        found = {}
        for group in GROUPS:
            for route in routes_of(group.app):
                key = (route.method, openapi_path(route.path))
                self.assertNotIn(key, found, f"{key} declared twice")
                found[key] = (route.permission, route.endpoint)
        return found

    def test_every_route_is_documented_and_every_operation_is_a_route(self):
        routes = self.klein_routes()
        documented = {(op.method, op.path): (op.permission, op.operation_id) for op in OPERATIONS}
        self.assertEqual(set(routes) - set(documented), set(), "routes missing from OpenAPI")
        self.assertEqual(set(documented) - set(routes), set(), "operations without a route")
        self.assertEqual(routes, documented)  # same permission and operationId too

    def test_document_paths_match_the_operations(self):
        doc = document()
        listed = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
        self.assertEqual(listed, {(op.method, op.path) for op in OPERATIONS})

    def test_path_parameters_are_declared(self):
        for op in OPERATIONS:
            in_path = set(re.findall(r"{(\w+)}", op.path))
            declared = {p for p in op.params if PARAMETERS[p]["in"] == "path"}
            self.assertEqual(in_path, declared, op.path)

    def test_every_reference_resolves_and_schemas_compile(self):
        doc = document()
        text = str(doc)
        for name in set(re.findall(r"#/components/schemas/(\w+)", text)):
            self.assertIn(name, doc["components"]["schemas"])
        for name, schema in doc["components"]["schemas"].items():
            jsonschema_rs.validator_for({**schema, "components": doc["components"]})
            self.assertTrue(name)

    def test_security_and_errors(self):
        doc = document()
        self.assertEqual(doc["openapi"], "3.1.0")
        self.assertEqual(doc["security"], [{"bearerAuth": []}])
        self.assertEqual(doc["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer")
        public = doc["paths"]["/api/v1/openapi.json"]["get"]
        self.assertEqual(public["security"], [])
        create = doc["paths"]["/api/v1/users"]["post"]
        self.assertEqual(
            set(create["responses"]),
            {"201", "400", "401", "403", "409", "413", "429", "500", "503"},
        )
        body = create["requestBody"]["content"]["application/json"]["schema"]
        self.assertFalse(body["additionalProperties"])
        self.assertEqual(body["required"], ["email", "password"])


class ServedDocumentTests(ApiTestCase):
    async def test_served_without_a_key_and_responses_match_it(self):
        reply = await self.call("GET", "/api/v1/openapi.json", key=None)
        self.assertEqual(reply.status, 200)
        doc = reply.json
        self.assertEqual(doc, document())
        user = await self.make_user("a@example.com", groups=["g"])

        def check(schema_name: str, value: object) -> None:
            schema = {"$ref": f"#/components/schemas/{schema_name}", **doc}
            jsonschema_rs.validator_for(schema).validate(value)

        check("User", user)
        check("UserList", (await self.call("GET", "/api/v1/users")).json)
        check("Error", (await self.call("GET", "/api/v1/users/999")).json)
        check("Quota", (await self.call("GET", f"/api/v1/users/{user['id']}/quota")).json)
        check("UserStats", (await self.call("GET", f"/api/v1/users/{user['id']}/stats")).json)
        check("DomainList", (await self.call("GET", "/api/v1/domains")).json)
        check("ApiKeyList", (await self.call("GET", "/api/v1/auth/keys")).json)
        check("NewApiKey", (await self.call("POST", "/api/v1/auth/keys", json={})).json)
        check("QueueStatus", (await self.call("GET", "/api/v1/queue/status")).json)
