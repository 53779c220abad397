/** The firmware version reported in status events: the product version (common/cli-args.ts). */
export { PRODUCT_VERSION as FIRMWARE_VERSION } from '../common/cli-args.js';
