from __future__ import annotations

from koomsg.testing.plugin import Api, EnterpriseHandle, count_rows, new_enterprise

ME = "{ me { kind name enterprise { id name serviceEnabled realNameVerified industryClass } } }"


async def test_me_answers_for_an_enterprise_root_key(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    me = (await api(ME)).ok()["me"]
    assert me["kind"] == "ENTERPRISE_ROOT"
    assert me["enterprise"]["name"] == "Acme"
    assert me["enterprise"]["serviceEnabled"] is True


async def test_me_for_an_operator_has_no_enterprise(api: Api) -> None:
    me = (await api(ME, key=api.keys["operator"])).ok()["me"]
    assert me == {"kind": "OPERATOR", "name": "test-operator", "enterprise": None}


async def test_missing_and_wrong_keys_are_unauthenticated(
    api: Api, enterprise: EnterpriseHandle
) -> None:
    (await api(ME, key="")).error("UNAUTHENTICATED")
    (await api(ME, key="key_nope.nope")).error("UNAUTHENTICATED")
    key_id, _, _ = enterprise.key.partition(".")
    (await api(ME, key=f"{key_id}.wrong-random-part")).error("UNAUTHENTICATED")


async def test_only_operators_create_enterprises(
    api: Api, enterprise: EnterpriseHandle, runtime
) -> None:
    before = await count_rows(runtime, "enterprise")
    response = await api(
        'mutation { createEnterprise(input: {name: "X", realNameVerified: true, industryClass: SENSITIVE}) { id } }'
    )
    response.error("FORBIDDEN")
    assert await count_rows(runtime, "enterprise") == before


async def test_operator_cannot_act_on_enterprise_resources(api: Api) -> None:
    (await api("{ iamUsers { id } }", key=api.keys["operator"])).error("FORBIDDEN")


async def test_enable_requires_verification_and_accepted_terms(api: Api) -> None:
    made = await new_enterprise(api, "Unverified", verified=False, enable=False)
    (await api("mutation { enableService(acceptTerms: false) { id } }", key=made.key)).error(
        "BAD_USER_INPUT", "acceptTerms"
    )
    refused = (
        await api("mutation { enableService(acceptTerms: true) { id } }", key=made.key)
    ).error("PRECONDITION_FAILED")
    assert "real-name" in refused["message"]
    verify = """mutation($id: ID!) { setEnterpriseVerification(enterpriseId: $id, realNameVerified: true,
        industryClass: NON_SENSITIVE) { realNameVerified } }"""
    (await api(verify, {"id": made.id}, key=api.keys["operator"])).ok()
    enabled = (
        await api("mutation { enableService(acceptTerms: true) { serviceEnabled } }", key=made.key)
    ).ok()
    assert enabled["enableService"]["serviceEnabled"] is True


async def test_resources_answer_service_not_enabled_before_enablement(api: Api) -> None:
    made = await new_enterprise(api, "Dormant", enable=False)
    (await api("{ iamUsers { id } }", key=made.key)).error("SERVICE_NOT_ENABLED")
    (await api('mutation { createIamUser(name: "a") { id } }', key=made.key)).error(
        "SERVICE_NOT_ENABLED"
    )
    # Asking who you are works before enabling: the console needs it to offer enablement.
    assert (await api(ME, key=made.key)).ok()["me"]["enterprise"]["serviceEnabled"] is False


async def test_set_verification_of_unknown_enterprise_is_not_found(api: Api) -> None:
    verify = """mutation { setEnterpriseVerification(enterpriseId: "ent_X", realNameVerified: true,
        industryClass: SENSITIVE) { id } }"""
    (await api(verify, key=api.keys["operator"])).error("NOT_FOUND", "enterpriseId")
