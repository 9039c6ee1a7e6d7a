/** A module without dependencies, so the stack and the EC2 adapter can check sizes without loading the renderer. */

/**
 * EC2's limit on user data: 16 KB (16384 bytes) in raw form, before base64 (EC2 user guide, "Run
 * commands when you launch an EC2 instance with user data input"). The one definition in the code
 * base: everything that checks a size imports it. A size equal to the limit is accepted.
 */
export const USER_DATA_LIMIT_BYTES = 16 * 1024;

/** True when `bytes` of user data (raw, before base64) fit EC2's limit. */
export function userDataFits(bytes: number): boolean {
  return bytes <= USER_DATA_LIMIT_BYTES;
}
