"""CA rollover as a Python user drives it: plan, run with progress, status
and trust bundle; the cross-signed chains checked by the openssl command."""

import clm
from conftest import openssl

STAGES = [
    "create_successor", "cross_sign", "publish_trust_bundle",
    "switch_issuance", "reissue_leaves", "retire_old",
]


def issue(handle, pki, issuer, cn):
    outcome = handle.issue_certificate(pki["system"], {
        "issuer_id": issuer.id,
        "validity_days": 90,
        "subject": {"common_name": cn},
        "sans": [{"type": "DNS", "value": cn}],
        "kind": "tls_server",
        "policy_id": pki["policy"].id,
    })
    assert outcome.outcome == "issued"
    return outcome.certificate


def test_plan_run_status_of_a_root_and_its_intermediate(handle, pki, tmp_path):
    system = pki["system"]
    # Without pathLenConstraints: a cross certificate adds a CA level, so
    # under a root limited to one level an old intermediate's leaves could
    # not verify through the other root (clm cuts the cross certificate's
    # own constraint to what its signer allows).
    root = handle.create_root_ca(system, {
        "subject": {"common_name": "Py Rollover Root", "organization": "Acme", "country": "US"},
        "key_algorithm": "ecdsa_p384",
    }).certificate
    inter = handle.create_intermediate_ca(system, root.id, {
        "subject": {"common_name": "Py Rollover Issuing CA"},
        "validity_days": 1825,
    }).certificate
    leaves = [issue(handle, pki, inter, f"r{n}.example.com") for n in range(3)]

    # The root: its intermediate keeps it from retiring until it is rolled too.
    plan = handle.plan_ca_rollover(system, root.id, {"overlap_days": 90})
    assert isinstance(plan, clm.RolloverPlan)
    assert plan.ca_kind == "root_ca" and plan.successor_issuer_id is None
    assert [s.stage for s in plan.stages] == STAGES
    assert all(isinstance(s, clm.PlannedStage) for s in plan.stages)
    assert plan.leaves_to_reissue == 0 and plan.dependants_blocking_retirement == 1
    assert plan.successor_key_algorithm == "ECDSA-P384"
    assert plan.open_rollover is None

    report = handle.run_ca_rollover(system, root.id, {"overlap_days": 90})
    assert isinstance(report, clm.RolloverReport)
    rollover = report.rollover
    assert isinstance(rollover, clm.CaRollover)
    assert rollover.status == "waiting" and rollover.stage == "retire_old"
    assert report.stages_completed == STAGES[:5]
    new_root = handle.get_certificate(system, rollover.successor_certificate_id)
    old_by_new = handle.get_certificate(system, rollover.cross_old_by_new_id)

    # The intermediate: signed again by the new root; leaves reissued in batches.
    plan = handle.plan_ca_rollover(system, inter.id)
    assert plan.successor_issuer_id == new_root.id and plan.leaves_to_reissue == 3
    assert not plan.stages[1].applies
    seen = []
    report = handle.run_ca_rollover(system, inter.id, batch_size=2, progress=seen.append)
    assert report.rollover.status == "completed", report.rollover.error_message
    assert report.rollover.leaves_reissued == 3
    assert len(seen) == 2 and all(isinstance(p, clm.RolloverProgress) for p in seen)
    assert seen[-1].leaves_reissued == 3
    new_inter = handle.get_certificate(system, report.rollover.successor_certificate_id)
    assert new_inter.issuer_certificate_id == new_root.id

    # The root again: nothing depends on it; it retires.
    report = handle.run_ca_rollover(system, root.id)
    assert report.resumed and report.rollover.status == "completed"
    status = handle.ca_rollover_status(system, root.id)
    assert status.id == rollover.id and status.stage == "done"
    assert status.trust_bundle_pem.count("-----BEGIN CERTIFICATE-----") == 4

    # openssl: an old leaf verifies through the new root via the cross certificate.
    (tmp_path / "new_root.pem").write_text(new_root.certificate_pem)
    (tmp_path / "chain.pem").write_text(inter.certificate_pem + old_by_new.certificate_pem)
    (tmp_path / "leaf.pem").write_text(leaves[0].certificate_pem)
    verified = openssl(
        "verify", "-CAfile", "new_root.pem", "-untrusted", "chain.pem", "leaf.pem", cwd=tmp_path
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # A rolled-over CA is not rolled over again; an unknown CA is not found.
    try:
        handle.run_ca_rollover(system, inter.id)
        raise AssertionError("a second rollover of the same CA must fail")
    except clm.Conflict:
        pass
    try:
        handle.ca_rollover_status(system, leaves[0].id)
        raise AssertionError("a leaf has no rollover")
    except clm.NotFound:
        pass
