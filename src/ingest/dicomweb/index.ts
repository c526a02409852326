export { createStowRsRouter, FailureReason, DICOM_JSON } from './stow-rs';
export type { StowEvent, StowRsDeps, StowSink } from './stow-rs';
