"""At-rest encryption primitives: round trip, row binding, key identity, search normalisation."""

from __future__ import annotations

import pytest

from oso_gateway.errors import AtRestDecryptionError, ConfigError
from oso_gateway.store.crypto import AtRestCipher, aad_for, normalise_search_value

KEY = bytes(range(32))


def test_encrypt_decrypt_round_trip_with_a_fresh_nonce_each_time() -> None:
    cipher = AtRestCipher(KEY)
    aad = aad_for("dossiers", "id-1", "urn:uuid:x")
    one = cipher.encrypt(b"secret dossier", aad=aad)
    two = cipher.encrypt(b"secret dossier", aad=aad)
    assert one != two
    assert b"secret" not in one
    assert cipher.decrypt(one, aad=aad, key_id=cipher.key_id) == b"secret dossier"


def test_a_ciphertext_bound_to_one_row_does_not_decrypt_for_another() -> None:
    cipher = AtRestCipher(KEY)
    blob = cipher.encrypt(b"x", aad=aad_for("dossiers", "id-1"))
    with pytest.raises(AtRestDecryptionError, match="does not authenticate"):
        cipher.decrypt(blob, aad=aad_for("dossiers", "id-2"), key_id=cipher.key_id)


def test_tampered_or_truncated_ciphertext_is_refused() -> None:
    cipher = AtRestCipher(KEY)
    aad = aad_for("t", 1)
    blob = bytearray(cipher.encrypt(b"payload", aad=aad))
    blob[-1] ^= 1
    with pytest.raises(AtRestDecryptionError):
        cipher.decrypt(bytes(blob), aad=aad, key_id=cipher.key_id)
    with pytest.raises(AtRestDecryptionError, match="truncated"):
        cipher.decrypt(bytes(blob[:20]), aad=aad, key_id=cipher.key_id)


def test_another_key_has_another_id_and_is_refused_before_decrypting() -> None:
    ours, theirs = AtRestCipher(KEY), AtRestCipher(bytes(32))
    assert ours.key_id != theirs.key_id and len(ours.key_id) == 16
    blob = ours.encrypt(b"x", aad=b"a")
    with pytest.raises(AtRestDecryptionError, match="key id"):
        theirs.decrypt(blob, aad=b"a", key_id=ours.key_id)
    # Even if the stored key id were forged to match, the key itself does not authenticate.
    with pytest.raises(AtRestDecryptionError, match="does not authenticate"):
        theirs.decrypt(blob, aad=b"a", key_id=theirs.key_id)


def test_the_key_and_its_derivations_stay_out_of_repr() -> None:
    cipher = AtRestCipher(KEY)
    assert KEY.hex() not in repr(cipher) and cipher.key_id in repr(cipher)


def test_a_storage_key_of_the_wrong_length_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        AtRestCipher(b"short")


def test_lookup_hashes_are_keyed_normalised_and_separated_by_kind() -> None:
    a, b = AtRestCipher(KEY), AtRestCipher(bytes(32))
    assert a.lookup_hash("family_name", "Émile  de Vries") == a.lookup_hash(
        "family_name", "emile DE vries"
    )
    assert a.lookup_hash("family_name", "de Vries") != b.lookup_hash("family_name", "de Vries")
    assert a.lookup_hash("family_name", "2014") != a.lookup_hash("birth_date", "2014")
    assert normalise_search_value("  Çelik\tÖztürk ") == "celik ozturk"
