/**
 * The form EC2 gets the worker's user data in: gzip, then base64. Kept apart from the renderer
 * (no dependency but node:zlib and ./limits) so the EC2 adapter can encode without loading it.
 *
 * Why gzip: the rendered script is about 29 KB, over EC2's 16 KB limit (limits.ts). cloud-init,
 * which runs the user data on both supported AMIs (Amazon Linux 2023, Ubuntu), decompresses it
 * first: "Gzip Compressed Content: Content found to be gzip compressed will be uncompressed. The
 * uncompressed data will then be used as if it were not compressed." (cloud-init docs, "User-Data
 * Formats", https://github.com/canonical/cloud-init/blob/20.2/doc/rtd/topics/format.rst; same
 * text in current releases). The limit applies to the compressed bytes, about a third of the script.
 * Every pool's user data is this and nothing else: no value known only at deploy time goes into
 * it (the deployment cache bucket's name reaches the worker as an instance tag), since
 * CloudFormation could only add one around the gzip, in base64, a third larger.
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
