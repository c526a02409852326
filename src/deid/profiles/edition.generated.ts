// GENERATED FILE - DO NOT EDIT. Regenerate with `npm run generate:profile` (scripts/generate-profile.ts).
export const EDITION = '2026d';
