"""The OCSP responder through the binding: requests built by Python's
cryptography, answered by ocsp_respond, read and verified by cryptography."""

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

import clm
from conftest import unique


def issue(handle, pki, cn):
    outcome = handle.issue_certificate(pki["system"], {
        "issuer_id": pki["inter"].certificate.id,
        "validity_days": 90,
        "subject": {"common_name": cn},
        "sans": [{"type": "DNS", "value": cn}],
        "kind": "tls_server",
        "policy_id": pki["policy"].id,
    })
    return outcome.certificate


def ask(handle, cert_pem, issuer_pem, algorithm=hashes.SHA1(), nonce=None):
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        x509.load_pem_x509_certificate(cert_pem.encode()),
        x509.load_pem_x509_certificate(issuer_pem.encode()),
        algorithm,
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    request = builder.build().public_bytes(serialization_der())
    reply = handle.ocsp_respond(base64.b64encode(request).decode())
    assert isinstance(reply, clm.OcspReply)
    return reply, ocsp.load_der_ocsp_response(base64.b64decode(reply.response_der_base64))


def serialization_der():
    from cryptography.hazmat.primitives import serialization
    return serialization.Encoding.DER


def verify(response, issuer_pem):
    signer = response.certificates[0] if response.certificates else \
        x509.load_pem_x509_certificate(issuer_pem.encode())
    signer.public_key().verify(
        response.signature, response.tbs_response_bytes,
        ec.ECDSA(response.signature_hash_algorithm),
    )
    return signer


@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA256()])
def test_good_revoked_and_nonce(handle, pki, algorithm):
    inter = pki["inter"].certificate
    good = issue(handle, pki, "good.example.com")
    revoked = issue(handle, pki, "revoked.example.com")
    handle.revoke_certificate(pki["system"], revoked.id, "key_compromise", None)

    reply, response = ask(handle, good.certificate_pem, inter.certificate_pem, algorithm)
    assert reply.response_status == "successful"
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert format(response.serial_number, "x") == good.serial_number.lstrip("0")
    signer = verify(response, inter.certificate_pem)
    assert signer.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "OCSP Responder"
    eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.ExtendedKeyUsageOID.OCSP_SIGNING]
    signer.extensions.get_extension_for_class(x509.OCSPNoCheck)

    nonce = bytes(range(16))
    _, response = ask(handle, revoked.certificate_pem, inter.certificate_pem, algorithm, nonce)
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason == x509.ReasonFlags.key_compromise
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    verify(response, inter.certificate_pem)


def test_malformed_and_unknown_issuer(handle, pki):
    reply = handle.ocsp_respond(base64.b64encode(b"not a request").decode())
    assert reply.response_status == "malformedRequest"
    assert ocsp.load_der_ocsp_response(base64.b64decode(reply.response_der_base64)).response_status \
        == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert handle.ocsp_respond("***").response_status == "malformedRequest"

    # A certificate named under an issuer clm holds no key for.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, unique("Elsewhere"))])
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc)
    foreign = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives import serialization
    pem = foreign.public_bytes(serialization.Encoding.PEM).decode()
    reply, response = ask(handle, pem, pem)
    assert reply.response_status == "unauthorized"
    assert response.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_signed_with_the_ca_key_when_asked(tmp_path):
    handle = clm.Clm.open(
        sqlite_dir=tmp_path / "data",
        master_key_file=tmp_path / "master.key",
        create_master_key=True,
        ocsp_sign_with_ca_key=True,
    )
    try:
        system = handle.system_actor()
        root = handle.create_root_ca(system, {
            "subject": {"common_name": unique("Py OCSP Root")},
            "key_algorithm": "ecdsa_p256",
        })
        leaf = handle.issue_certificate(system, {
            "issuer_id": root.certificate.id,
            "validity_days": 30,
            "subject": {"common_name": "ca-signed.example.com"},
            "kind": "tls_server",
        }).certificate
        _, response = ask(handle, leaf.certificate_pem, root.certificate.certificate_pem)
        assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
        assert response.certificates == []
        verify(response, root.certificate.certificate_pem)
    finally:
        handle.close()
