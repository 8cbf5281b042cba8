# Type stubs for clm; tests/test_stubs.py checks them against the module.
from types import TracebackType
from typing import Any, Literal

__version__: str

Record = dict[str, Any]

def error_codes() -> list[tuple[int, str]]: ...
def operations() -> list[str]: ...

class ClmError(Exception):
    code: str | None

class NotFound(ClmError): ...
class AlreadyExists(ClmError): ...
class InvalidInput(ClmError): ...
class PolicyViolation(ClmError): ...
class PermissionDenied(ClmError): ...
class Conflict(ClmError): ...
class Crypto(ClmError): ...
class Database(ClmError): ...
class Authentication(ClmError): ...
class Configuration(ClmError): ...
class Closed(ClmError): ...
class Internal(ClmError): ...

class Actor:
    @property
    def kind(self) -> Literal["user", "api_key", "system"]: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def organization_ids(self) -> list[str]: ...

class Clm:
    @staticmethod
    def open(
        *,
        sqlite_dir: str | None = None,
        secure_url: str | None = None,
        core_url: str | None = None,
        master_key: str | None = None,
        master_key_file: str | None = None,
        create_master_key: bool = False,
        max_connections: int | None = None,
    ) -> Clm: ...
    def close(self) -> None: ...
    def __enter__(self) -> Clm: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool: ...
    @staticmethod
    def version() -> str: ...
    def system_actor(self) -> Actor: ...
    def create_user(
        self,
        actor: Actor,
        username: str,
        email: str,
        *,
        display_name: str | None = None,
        password: str | None = None,
        organization_id: str | None = None,
    ) -> Record: ...
    def authenticate(self, login: str, password: str, otp: str | None = None) -> Record: ...
    def validate_session(self, token: str) -> Actor: ...
    def create_organization(
        self,
        actor: Actor,
        org_code: str,
        name: str,
        *,
        description: str | None = None,
        parent_organization_id: str | None = None,
    ) -> Record: ...
    def create_policy(
        self,
        actor: Actor,
        policy_code: str,
        name: str,
        rules: dict[str, Any] | str,
        *,
        description: str | None = None,
        status: str | None = None,
        organization_id: str | None = None,
        workflow_id: str | None = None,
    ) -> Record: ...
    def create_root_ca(
        self,
        actor: Actor,
        subject: dict[str, str],
        *,
        key_algorithm: str | None = None,
        validity_days: int | None = None,
        path_len: int | None = None,
        organization_id: str | None = None,
        crl_distribution_points: list[str] | None = None,
        ocsp_urls: list[str] | None = None,
        ca_issuers_urls: list[str] | None = None,
    ) -> Record: ...
    def create_intermediate_ca(
        self,
        actor: Actor,
        issuer_id: str,
        subject: dict[str, str],
        *,
        key_algorithm: str | None = None,
        validity_days: int | None = None,
        path_len: int | None = None,
        organization_id: str | None = None,
        crl_distribution_points: list[str] | None = None,
        ocsp_urls: list[str] | None = None,
        ca_issuers_urls: list[str] | None = None,
    ) -> Record: ...
    def issue_certificate(
        self,
        actor: Actor,
        issuer_id: str,
        validity_days: int,
        *,
        subject: dict[str, str] | None = None,
        sans: list[dict[str, str]] | None = None,
        kind: str | None = None,
        key_algorithm: str | None = None,
        csr: str | None = None,
        policy_id: str | None = None,
        owner_user_id: str | None = None,
        organization_id: str | None = None,
    ) -> Record: ...
    def export_private_key(self, actor: Actor, certificate_id: str) -> str: ...
    def revoke_certificate(
        self, actor: Actor, certificate_id: str, reason: str, comment: str | None = None
    ) -> Record: ...
    def generate_crl(
        self, actor: Actor, issuer_id: str, next_update_hours: int | None = None
    ) -> Record: ...
    def verify_audit_chain(self, actor: Actor, log: Literal["secure", "core"]) -> Record: ...
