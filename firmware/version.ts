/** The firmware version reported in status events; a test keeps it equal to package.json. */
export const FIRMWARE_VERSION = '0.1.0';
