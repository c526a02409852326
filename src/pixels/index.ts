/** Pixel layer of the `extract` command: full bit depth arrays, .npy and lossless PNG. */
export type { Dtype, PixelArray, PixelInfo } from './types';
export { PixelDecodeError } from './errors';
export type { PixelErrorCode } from './errors';
export { decodePixels } from './decode';
export { applyRescale } from './rescale';
export { encodeNpy } from './npy';
export { encodePng16 } from './png';
