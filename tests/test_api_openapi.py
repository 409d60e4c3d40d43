import re


def test_every_route_is_documented(app, client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, f"{method} {path} is not in openapi"


def test_documented_routes_exist(app, client):
    spec = client.get("/openapi.json").get_json()
    routes = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r.rule) for r in app.url_map.iter_rules()}
    assert set(spec["paths"]) <= routes


def test_every_admitted_route_documents_the_admission_answers(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for path, method in [("/metrics", "get"), ("/v1/events", "get"), ("/v1/infer", "post"),
                         ("/v1/models/{name}", "get"), ("/v2/models/{name}/infer", "post")]:
        operation = paths[path][method]
        assert {"401", "403", "429", "503"} <= set(operation["responses"]), path
        assert operation["security"] == [{}, {"bearer": []}]
    assert "security" not in paths["/healthz"]["get"]
