/**
 * Attributes of PS3.6 that Table E.1-1 (2026d) lists but dcmjs 0.52's dictionary does not know
 * yet (added to the standard in 2024-2026). Without them, implicit VR data would read these as
 * UN. Keyed like dcmjs: "(gggg,eeee)".
 */
export const DICTIONARY_SUPPLEMENT: Record<string, { vr: string; keyword: string }> = {
  '(0008,1301)': { vr: 'SQ', keyword: 'PrincipalDiagnosisCodeSequence' },
  '(0008,1302)': { vr: 'SQ', keyword: 'PrimaryDiagnosisCodeSequence' },
  '(0008,1303)': { vr: 'SQ', keyword: 'SecondaryDiagnosesCodeSequence' },
  '(0008,1304)': { vr: 'SQ', keyword: 'HistologicalDiagnosesCodeSequence' },
  '(0010,0011)': { vr: 'SQ', keyword: 'PersonNamesToUseSequence' },
  '(0010,0012)': { vr: 'LT', keyword: 'NameToUse' },
  '(0010,0013)': { vr: 'UT', keyword: 'NameToUseComment' },
  '(0010,0014)': { vr: 'SQ', keyword: 'ThirdPersonPronounsSequence' },
  '(0010,0015)': { vr: 'SQ', keyword: 'PronounCodeSequence' },
  '(0010,0016)': { vr: 'UT', keyword: 'PronounComment' },
  '(0010,0041)': { vr: 'SQ', keyword: 'GenderIdentitySequence' },
  '(0010,0042)': { vr: 'UT', keyword: 'SexParametersForClinicalUseCategoryComment' },
  '(0010,0043)': { vr: 'SQ', keyword: 'SexParametersForClinicalUseCategorySequence' },
  '(0010,0044)': { vr: 'SQ', keyword: 'GenderIdentityCodeSequence' },
  '(0010,0045)': { vr: 'UT', keyword: 'GenderIdentityComment' },
  '(0010,0046)': { vr: 'SQ', keyword: 'SexParametersForClinicalUseCategoryCodeSequence' },
  '(0010,0047)': { vr: 'UR', keyword: 'SexParametersForClinicalUseCategoryReference' },
  '(0010,2162)': { vr: 'UC', keyword: 'EthnicGroups' },
  '(0040,A034)': { vr: 'DT', keyword: 'EffectiveStartDateTime' },
  '(0040,A035)': { vr: 'DT', keyword: 'EffectiveStopDateTime' },
  '(0040,B034)': { vr: 'DT', keyword: 'AnnotationDateTime' },
  '(0040,B036)': { vr: 'DT', keyword: 'SegmentDefinitionDateTime' },
  '(0040,B03B)': { vr: 'LT', keyword: 'MontageName' },
  '(0040,B03F)': { vr: 'LO', keyword: 'MontageChannelLabel' },
  '(0040,E012)': { vr: 'UR', keyword: 'DisplayURI' },
  '(3004,007F)': { vr: 'LO', keyword: 'DoseCalculationModelName' },
};
