import { RouteConfig, Config } from '../config/schema';
import { DEFAULT_SETTINGS, DeidSettings } from '../deid/settings';
import { resolveConfigTag } from './routing';

/** The engine settings of a route (config validated already; tags resolved here). */
export function settingsForRoute(route: RouteConfig, pseudonyms: Config['pseudonyms'], lookup?: ReadonlyMap<string, string>): DeidSettings {
  return {
    ...DEFAULT_SETTINGS,
    profile: route.profile,
    options: new Set(route.options),
    overrides: route.overrides.map((o) => {
      const tag = resolveConfigTag(o.tag);
      return o.action === 'replace' ? { tag, action: 'replace' as const, value: o.value ?? '' } : { tag, action: o.action };
    }),
    acceptRisks: new Set(route.acceptRisks),
    patientIdPrefix: pseudonyms.patientIdPrefix,
    dateShiftDays: pseudonyms.dateShiftDays,
    lookup: lookup && { table: lookup, required: pseudonyms.lookupRequired },
  };
}
