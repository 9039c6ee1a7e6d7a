/**
 * The form EC2 gets the worker's user data in: gzip, then base64. Kept apart from the renderer
 * (no dependency but node:zlib and ./limits) so the EC2 adapter can encode without loading it.
 *
 * Why gzip: the rendered script is about 15 KB, close to EC2's 16 KB limit (limits.ts). cloud-init,
 * which runs the user data on both supported AMIs (Amazon Linux 2023, Ubuntu), decompresses it
 * first: "Gzip Compressed Content: Content found to be gzip compressed will be uncompressed. The
 * uncompressed data will then be used as if it were not compressed." (cloud-init docs, "User-Data
 * Formats", https://github.com/canonical/cloud-init/blob/20.2/doc/rtd/topics/format.rst; same
 * text in current releases). The limit applies to the compressed bytes, about a third of the script.
 */
import { gzipSync } from 'node:zlib';
import { USER_DATA_LIMIT_BYTES, userDataFits } from './limits';

/**
 * gzip of the script, byte for byte the same for the same script: zlib's gzipSync writes no file
 * name and mtime 0 (header bytes 4-7); the OS byte (9) is zlib's build platform (3 on Linux, 19 on
 * macOS), so it is fixed to 3 (Unix): a deploy from a Mac must not make a new launch template version.
 */
export function gzipUserData(script: string): Buffer {
  const gz = gzipSync(Buffer.from(script, 'utf8'), { level: 9 });
  gz[9] = 3;
  return gz;
}

/** base64(gzip(script)): the launch template's UserData. Throws when the compressed bytes exceed EC2's limit. */
export function encodeUserData(script: string, what = 'the worker user data'): string {
  const gz = gzipUserData(script);
  checkEncodedSize(what, Buffer.byteLength(script, 'utf8'), gz.length);
  return gz.toString('base64');
}

export class UserDataSizeError extends Error {
  override name = 'UserDataSizeError';
}

/** EC2 checks the bytes it gets (before base64): here the gzip; the message gives both sizes. */
export function checkEncodedSize(what: string, plainBytes: number, encodedBytes: number): void {
  if (!userDataFits(encodedBytes))
    throw new UserDataSizeError(
      `${what} is ${encodedBytes} bytes gzip-compressed (${plainBytes} bytes as a script), over EC2's limit of ${USER_DATA_LIMIT_BYTES} bytes`,
    );
}

/** S3 bucket names are at most 63 characters (S3 user guide, "Bucket naming rules"). */
export const MAX_BUCKET_NAME = 63;

/**
 * User data for a pool whose bucket name exists only at deploy time (CloudFormation generates the
 * deployment cache bucket's name, and CloudFormation cannot compress): a short plain script that
 * CloudFormation completes with the name between `before` and `after`. It unpacks the gzip (base64
 * in a here-document), puts the name where `placeholder` stands, and runs the result — exactly the
 * script rendered with that bucket — or powers the instance off when it cannot. `maxBytes` is its
 * size with the longest bucket name S3 allows.
 */
export function bucketNameWrapper(pool: string, gz: Buffer, placeholder: string): { before: string; after: string; maxBytes: number } {
  const b64 = gz.toString('base64').replace(/.{1,76}/g, '$&\n');
  const before = [
    '#!/bin/bash',
    `# gitlab-spot-autoscaler worker of pool "${pool}", gzip-compressed (EC2 allows 16 KB of user data);`,
    '# CloudFormation filled in the cache bucket name. Print the script: gitlab-spot-autoscaler user-data.',
    'set -o pipefail',
    'f=$(mktemp) || exit 1',
    `if ! base64 -d <<'GSA_GZ' | gunzip | sed "s/${placeholder}/`,
  ].join('\n');
  const after = ['/g" >"$f"; then', b64 + 'GSA_GZ', '  shutdown -h now "gsa-worker: cannot unpack the user data"', '  exit 1', 'fi', 'exec /bin/bash "$f"', ''].join('\n');
  return { before, after, maxBytes: Buffer.byteLength(before + after, 'utf8') + MAX_BUCKET_NAME };
}
