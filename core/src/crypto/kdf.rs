//! Passphrase → room key (`psk`), and the length-prefixed encoding every
//! derivation label and transcript uses.
//!
//! `psk = HKDF-SHA256(salt = ROOM, ikm = Argon2id(SECRET, salt =
//! SHA-256("streamflow/1 salt" ‖ ROOM)[..16], m, t, p, 32 B), info = "streamflow/1 psk")`

use argon2::{Algorithm, Argon2, Params, Version};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::secret::Key32;

/// Argon2id cost, pinned per protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl KdfParams {
    /// Protocol v1: m = 64 MiB, t = 3, p = 1.
    pub const V1: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// Cheap parameters for tests that are not about the KDF itself.
    pub const INSECURE_FAST: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
}

#[derive(Debug, thiserror::Error)]
#[error("key derivation failed: {0}")]
pub struct KdfError(String);

/// Derives the room key from the normalised secret phrase and the room id.
pub fn derive_psk(room: &str, secret: &str, params: KdfParams) -> Result<Key32, KdfError> {
    let salt_full = Sha256::new()
        .chain_update(b"streamflow/1 salt")
        .chain_update(room.as_bytes())
        .finalize();
    let argon = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(32),
        )
        .map_err(|e| KdfError(e.to_string()))?,
    );
    let mut stretched = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(secret.as_bytes(), &salt_full[..16], stretched.as_mut())
        .map_err(|e| KdfError(e.to_string()))?;
    // Every buffer is wiped: the Argon2 output (Zeroizing), the PRK
    // (below), the `Hkdf`'s keyed HMAC state ([`Wiped`]; hkdf/hmac 0.12
    // don't wipe it themselves) and the output copy.
    let (mut prk, hk) = Hkdf::<Sha256>::extract(Some(room.as_bytes()), stretched.as_ref());
    let hk = super::wipe::Wiped::new(hk);
    zeroize::Zeroize::zeroize(prk.as_mut_slice());
    let mut psk = [0u8; 32];
    hk.expand(b"streamflow/1 psk", &mut psk)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    let key = Key32::from_bytes(psk);
    zeroize::Zeroize::zeroize(&mut psk);
    Ok(key)
}

/// Appends `field` with a 4-byte big-endian length, so concatenated fields
/// can never be re-split differently.
pub fn put_lp(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_be_bytes());
    out.extend_from_slice(field);
}

/// Length-prefixed concatenation of `fields`.
pub fn lp(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fields.iter().map(|f| f.len() + 4).sum());
    for f in fields {
        put_lp(&mut out, f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9106 §5.3: Argon2id with secret and associated data.
    #[test]
    fn argon2id_rfc9106_vector() {
        let params = argon2::ParamsBuilder::new()
            .m_cost(32)
            .t_cost(3)
            .p_cost(4)
            .output_len(32)
            .data(argon2::AssociatedData::new(&[0x04; 12]).unwrap())
            .build()
            .unwrap();
        let argon =
            Argon2::new_with_secret(&[0x03; 8], Algorithm::Argon2id, Version::V0x13, params)
                .unwrap();
        let mut tag = [0u8; 32];
        argon
            .hash_password_into(&[0x01; 32], &[0x02; 16], &mut tag)
            .unwrap();
        assert_eq!(
            hex::encode(tag),
            "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
        );
    }

    /// RFC 5869 Appendix A.1: HKDF-SHA256 basic case.
    #[test]
    fn hkdf_rfc5869_a1() {
        let ikm = [0x0b; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let (prk, hk) = Hkdf::<Sha256>::extract(Some(&salt), &ikm);
        assert_eq!(
            hex::encode(prk),
            "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
        );
        let mut okm = [0u8; 42];
        hk.expand(&info, &mut okm).unwrap();
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    /// The AES key schedule is wiped on drop: aes-gcm's own `zeroize`
    /// feature leaves it to the `aes` feature (turned on in Cargo.toml,
    /// with `ghash`'s and `polyval`'s, whose `Drop` wipes the GHASH key).
    /// Without it this does not compile.
    #[test]
    fn cipher_key_schedules_zeroize_on_drop() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<aes::Aes256>();
    }

    /// Frozen: a silent change of labels or parameters must fail here. (A
    /// typed secret: two of these words are not on the list.)
    #[test]
    fn frozen_invite_to_psk_with_v1_parameters() {
        let psk = derive_psk(
            "k7f3m2q9xw4hd8ta",
            "orbit-velvet-canyon-maple-drift",
            KdfParams::V1,
        )
        .unwrap();
        assert_eq!(hex::encode(psk.expose()), FROZEN_PSK);
    }

    const FROZEN_PSK: &str = "43f66ceac0b895b3dc1f7d963729db55f29269b4a13e1d52efc52fdaf92b4e28";

    #[test]
    fn psk_depends_on_room_and_secret() {
        let p = KdfParams::INSECURE_FAST;
        let a = derive_psk("room1", "a-b-c", p).unwrap();
        let b = derive_psk("room2", "a-b-c", p).unwrap();
        let c = derive_psk("room1", "a-b-d", p).unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.expose(), c.expose());
        assert_eq!(
            a.expose(),
            derive_psk("room1", "a-b-c", p).unwrap().expose()
        );
    }

    #[test]
    fn length_prefix_separates_fields() {
        assert_ne!(lp(&[b"ab", b"c"]), lp(&[b"a", b"bc"]));
        assert_eq!(lp(&[b"x"]), [0, 0, 0, 1, b'x']);
    }
}
