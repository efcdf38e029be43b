/**
 * @module derp/self-signed
 * A throwaway self-signed certificate for the embedded relay when Headway itself has no TLS
 * (server_url http://). Tailscale clients speak TLS to every DERP node, whatever its port; a
 * node marked `InsecureForTests` only skips the certificate check. So the plain listener also
 * answers TLS with this certificate, made in memory once per process and never written to disk
 * (making one takes most of a second: a restart in the same process reuses it).
 * node-forge builds the X.509 structure (Node has no API for it); the RSA key is Node's own.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { tryParseIP } from '../util/ip.js';

export interface SelfSignedCertificate {
  /** PEM. */
  readonly cert: string;
  /** PEM (PKCS#1). */
  readonly key: string;
}

const madeThisProcess = new Map<string, SelfSignedCertificate>();

/** A certificate for `hostName` (a DNS name or an IP address), valid from an hour ago for a year. */
export function selfSignedCertificate(hostName: string): SelfSignedCertificate {
  let made = madeThisProcess.get(hostName);
  if (made === undefined) madeThisProcess.set(hostName, (made = makeCertificate(hostName)));
  return made;
}

function makeCertificate(hostName: string): SelfSignedCertificate {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  // Positive serial: a leading byte below 0x80.
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 3_600_000);
  cert.validity.notAfter = new Date(now + 365 * 86_400_000);
  const subject = [{ name: 'commonName', value: hostName }, { name: 'organizationName', value: 'Headway embedded DERP (insecure, for tests)' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  const altName = tryParseIP(hostName) !== null ? { type: 7, ip: hostName } : { type: 2, value: hostName };
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [altName] },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(privateKey), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKey };
}
