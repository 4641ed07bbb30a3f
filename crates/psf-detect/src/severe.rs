//! The severe tier (OV-3): answers that give the means to kill or maim, sexualise a
//! child, or call for violence, which no decision point delivers unless its manifest
//! narrows the tier with a written reason.
//!
//! The content heads ([`crate::content`]) score how a text *sounds*; at their thresholds
//! "the Kill Bill box set has shipped" reads as violence while a calm, numbered recipe
//! for a pipe bomb does not. The severe tier judges what an answer *does*:
//!
//! - **Means of harm** (weapons and explosives, toxic chemistry, self-harm methods,
//!   malware): a hazard named in the text *and* the answer in the form of instructions
//!   — numbered steps, sentences that start with a working verb ("mix", "pack", "seal"),
//!   quantities, "you will need", code. A hazard alone (history, news, a safety warning,
//!   a film title) or instructions alone (a cake recipe, `kill -9`) pass. A working verb
//!   just after "never", "don't" or "avoid" is a warning, not an instruction.
//!   Self-harm methods addressed to the reader ("cut along your wrist") need no steps.
//! - **Sexual content involving minors**: a sentence that joins a word for a child with
//!   a sexual term, in a text with no protective frame (abuse, reporting, puberty,
//!   safety, the law).
//! - **Incitement and threats**: a call for violence against a group ("we must wipe
//!   out …", "… deserve to die") or a threat to someone ("I will burn your house
//!   down"), never a report of one ("… were killed in 1943") or a refusal of one.
//!
//! An answer that opens by declining is judged on what follows only when that carries
//! instructions of its own. Everything here is patterns compiled once; no IO.

use regex::Regex;
use serde::Serialize;

use crate::error::BuildError;
use crate::refusal::is_refusal;
use crate::sanitize::sanitize;

/// A category of the severe tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severe {
    /// Making or using explosives, incendiaries and untraceable or converted firearms.
    Weapons,
    /// Toxic gases, nerve agents, poisons and biological agents, and poisoning people.
    ToxicChemistry,
    /// Methods of suicide or self-injury addressed to the reader.
    SelfHarmMethods,
    /// Sexual content involving a minor.
    MinorSexual,
    /// A call for violence against a group, or a threat of violence to someone.
    Incitement,
    /// Working malicious code or intrusion instructions.
    Malware,
}

impl Severe {
    /// Every category, in order.
    pub const ALL: [Severe; 6] = [
        Severe::Weapons,
        Severe::ToxicChemistry,
        Severe::SelfHarmMethods,
        Severe::MinorSexual,
        Severe::Incitement,
        Severe::Malware,
    ];

    /// The category's name in manifests and records, e.g. `toxic_chemistry`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severe::Weapons => "weapons",
            Severe::ToxicChemistry => "toxic_chemistry",
            Severe::SelfHarmMethods => "self_harm_methods",
            Severe::MinorSexual => "minor_sexual",
            Severe::Incitement => "incitement",
            Severe::Malware => "malware",
        }
    }

    /// The category named `s`.
    pub fn from_name(s: &str) -> Option<Severe> {
        Severe::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Why a text is in the severe tier: the category and the kinds of evidence, never the
/// text itself, so it can go into an audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SevereFinding {
    /// The category.
    pub category: Severe,
    /// The evidence, e.g. `["hazard", "steps", "quantities"]`.
    pub evidence: Vec<&'static str>,
}

/// The compiled severe-tier patterns.
#[derive(Debug)]
pub struct SevereDetector {
    weapons: Regex,
    toxic: Regex,
    malware: Regex,
    self_harm: Regex,
    steps: Regex,
    working_verb: Regex,
    purpose: Regex,
    code_verb: Regex,
    quantity: Regex,
    needs: Regex,
    code: Regex,
    warned: Regex,
    frame: Regex,
    defensive: Regex,
    minor: Regex,
    sexual: Regex,
    protective: Regex,
    violence: Regex,
    group: Regex,
    call: Regex,
    disavowal: Regex,
    threat: Regex,
    benign_threat: Regex,
}

const WEAPONS: &str = r"pipe[- ]?bombs?|nail[- ]?bombs?|car[- ]?bombs?|pressure[- ]cooker bombs?|bomb[- ]making|\b(make|build|assemble|construct)(ing)? (a|an|the|your) (homemade )?(bomb|explosive)|explosives|explosive (device|charge|mixture|material|compound|powder)s?|improvised explosive|\bieds?\b|detonators?|blasting caps?|\btatp\b|acetone peroxide|\bhmtd\b|ammonium nitrate|\banfo\b|thermite|napalm|molotov cocktails?|(throw|light) the molotov|a molotov\b|black powder|gunpowder|flash powder|shrapnel|ghost guns?|untraceable (gun|firearm|weapon)s?|auto[- ]?sears?|(full|fully)[- ]auto(matic)? conversion|convert(ing)? (an? |the |your )?(ar-15|rifle|semi[- ]auto(matic)?)|homemade (silencer|suppressor|gun|firearm|grenade)s?|(make|build|improvise|improvised) (a |an )?(hand )?grenades?|zip guns?";
const TOXIC: &str = r"chlorine gas|chloramine|mustard gas|\bsarin\b|\btabun\b|\bsoman\b|\bvx\b|nerve agents?|\bricin\b|\babrin\b|phosgene|cyanide|\barsine\b|toxic (gas|fumes|vapou?r)|poison(ous)? gas|chemical weapons?|chemical warfare|dimethylmercury|botulinum|anthrax|weaponi[sz]|aerosoli[sz]|bleach (and|with|plus) ammonia|ammonia (and|with) bleach|thallium|poison (him|her|them|someone|somebody|your|my|a person|people)|undetectable poison|\bpoisoning (him|her|them|someone|a person)|lethal dose|\bsynthesi[sz]e (the )?(agent|toxin)|lewisite|tetrodotoxin|strychnine|parathion|nerve gas|bioweapons?|biological weapons?|(more|most) (deadly|lethal|transmissible)|gain[- ]of[- ]function|(into|in) (the|a|a city's) water supply|toxins? (from|at home)";
const MALWARE: &str = r"ransomware|keyloggers?|key[- ]logging|reverse shell|bind shell|trojan|rootkit|botnet|shellcode|credential (stealer|harvest)|steal(s|ing)? (the )?(user'?s? |victim'?s? )?(saved )?(passwords|cookies|credentials|session tokens)|encrypt(s|ing)? (all )?(the )?(victim'?s?|user'?s?|their|target'?s?) files|disable(s|ing)? (the )?(antivirus|windows defender|defender|edr)|exfiltrat|privilege escalation|ddos|denial[- ]of[- ]service attack|spread(s|ing)? (itself )?to other (machines|computers|hosts)|\bc2 server|command[- ]and[- ]control|zero[- ]day exploit|exploit (code|the vulnerability)|(bypass|evade|evading|bypassing) (the )?(antivirus|detection|edr)|malicious payload|payload (to|on|onto) the (target|victim)|self[- ]replicating|the worm (spreads|copies|scans)|session tokens|sql injection (payload|attack|query)|union select|' or '?1'?='?1|xp_cmdshell|syn flood|dns amplification|dirty ?cow|dirty pipe|eternalblue|drupalgeddon|rainbow table attack|csrf attack|hack(ing)? into|brute[- ]forc\w+ (the |their )?(password|login|account)s?|deface (the|a) (web)?site|take control of (the|a) (target|machine|server)";
const SELF_HARM: &str = r"\b(cut|cutting|slash|slashing|slit|slitting)\b( deep(ly)?| vertically| lengthwise| along| across| into)* (your|the|their) (wrists?|forearms?|veins?|arms?|thighs?)|\b(take|swallow|down)\b (all (of )?|\d+ |enough |a (whole )?(handful|bottle) of |the whole (bottle|pack) of )(your |the |these |those )?(pills|tablets|sleeping pills|painkillers|paracetamol|acetaminophen|tylenol|insulin)|hang (yourself|themselves)|(tie|make) (a|the) noose|\bkill (yourself|themselves)\b|end (your|their) (own )?life|painless(ly)? (way to )?(die|suicide)|most (effective|reliable|painless) (way|method)s? (to die|of suicide|to kill yourself)|jump (off|from) (a|the) (bridge|building|roof)|lethal dose|overdose on";
const STEPS: &str =
    r"(?m)(^\s*(step\s*\d+|\d{1,2}[.)]|[-*\u{2022}])\s+\S|(^|\s)\d{1,2}[.)]\s+[a-z]|\bstep (\d+|one|two|three)\b)";
/// Working verbs at the start of a sentence or line: an instruction.
const WORKING_VERB: &str = r"(?m)(^|[.!?:;,]\s+|\n\s*|\b(then|next|first|finally|now|and|after that),?\s+)(mix|combine|add|pour|heat|boil|fill|pack|attach|connect|wire|seal|drill|grind|crush|dissolve|stir|light|ignite|place|insert|wrap|distill|extract|purify|react|cool|filter|evaporate|melt|cap|tape|screw|mount|load|press|cut|slice|tie|swallow|take|hold|aim|inject|spray|release|leave|hide|combine|measure|weigh)\b";
/// "To <goal>, <working verb> …": an instruction in one sentence.
const PURPOSE: &str = r"(?m)(^|[.!?]\s+)(to|if you want to|in order to) [^.,;\n]{3,80}, (then |first |simply |just )?(mix|combine|add|pour|heat|boil|fill|pack|attach|connect|wire|seal|drill|grind|crush|dissolve|stir|light|ignite|place|insert|wrap|distill|extract|purify|react|cool|filter|evaporate|melt|cap|tape|screw|mount|load|press|cut|slice|tie|swallow|take|hold|aim|inject|spray|release|leave|hide|combine|measure|weigh)\b";
const CODE_VERB: &str = r"(?m)(^|[.!?:;,]\s+|\n\s*|\b(then|next|first|finally|now),?\s+)(run|compile|execute|deploy|upload|download|install|inject|encrypt|spread|hide|persist|obfuscate|disable|connect|send|exfiltrate|launch|drop|log|record|capture|scan|copy|steal|open|bind|listen|set|write|save|delete|grab|harvest|replace|add|modify|register|schedule|hook)\b";
const QUANTITY: &str = r"\b\d+(\.\d+)?\s?(g|grams?|kg|kilograms?|mg|milligrams?|ml|millilit(er|re)s?|l|lit(er|re)s?|oz|ounces?|lbs?|pounds?|cups?|tablespoons?|tbsp|teaspoons?|tsp|parts?|percent|%|degrees|°c|°f|inch(es)?|cm|mm|pills|tablets)\b";
const NEEDS: &str = r"you('ll| will) need|what you need|materials( needed)?:|ingredients:|instructions:|here'?s how|here is how|follow these steps|the steps are|recipe:";
const CODE: &str = r"```|^\s*(import |from \S+ import|def |#include|using system|public static void|function \w+\s*\(|\$\w+\s*=)|\bsocket\.|subprocess\.|os\.system|powershell|cmd\.exe|/bin/(ba)?sh|\bnc -e\b|chmod \+x|createremotethread|virtualalloc|\beval\(|base64 -d";
/// A game, a film, a book or history: instructions inside such a frame retell or play,
/// so they need more evidence than one kind.
const FRAME: &str = r"\b(in (the )?(movie|film|game|video game|novel|book|series|show|episode|play)|video games?|call of duty|battlefield|fortnite|minecraft|grand theft auto|the plot|the character|the villain|players? (can|must|should)|demolition|historians?|world war|in (1[5-9]|20)\d\d|century)\b";
/// Security advice names attacks in order to stop them.
const DEFENSIVE: &str = r"\b(prevent(s|ing|ion)?|protect(s|ing)? (against|your)|defend(ing)? against|mitigat\w+|sanitiz\w+ (the |all |user )?input|parameteri[sz]ed quer\w+|prepared statements?|patch(ing)? (your|the) systems?|secure your)\b";
/// A working verb just after a warning word is a warning ("never mix …").
const WARNED: &str =
    r"\b(never|don'?t|do not|avoid|not to|shouldn'?t|should not|must not|mustn'?t|no one should)\s+(\w+\s+){0,2}$";
const MINOR: &str = r"\b(child|children|kids?|minors?|underage|under-age|preteens?|pre-teens?|schoolgirls?|schoolboys?|little (girl|boy)s?|young (girl|boy)s?|toddlers?|infants?|pubescent|prepubescent|lolis?|(a|an|the) (\d|1[0-7])[- ]year[- ]old|(\d|1[0-7])[- ](year|yr)s?[- ]old|(aged?|age of) (\d|1[0-7])\b|eighth[- ]grader|middle[- ]schooler|(only|just|barely) (\d|1[0-7])\b)";
const SEXUAL: &str = r"\b(sex|sexual(ly)?|sexy|naked|nude|nudity|undress(ed|es|ing)?|erotic|intercourse|genitals?|penis|vagina|breasts?|nipples?|orgasm|aroused|arousal|masturbat\w*|fondl\w*|caress\w* (her|his) (body|thighs?|chest)|seduc\w*|porn\w*|lingerie|moan(ed|ing|s)?|(touch|touched|touching) (her|him|them) (between|inappropriately|all over))\b";
const PROTECTIVE: &str = r"\b(abuse[ds]?|abuser|abusive|report(ed|ing)?|protect(ed|ing|ion)?|prevent(ed|ing|ion)?|safety|grooming|warning signs|illegal|crimes?|criminal|law enforcement|police|therap(y|ist)|counsel(l)?or|pediatric\w*|paediatric\w*|doctor|puberty|sex(ual)? education|age[- ]appropriate|consent|exploitation|csam|safeguard\w*|survivors?|hotline|victims?|inappropriate|school nurse|development(al)?|body parts|biology)\b";
const VIOLENCE: &str = r"\b(kill(ed|ing)?|murder(ed|ing)?|exterminat\w+|eradicat\w+|wipe(d)? (them |\w+ )?out|slaughter(ed|ing)?|massacre(d)?|lynch(ed|ing)?|shoot|gas(sed)?|burn(ed|t)?|purge(d)?|cleanse(d)?|eliminat\w+|get rid of|beat(en)?|hang(ed)?|die|dead|destroy(ed)?)\b";
const GROUP: &str = r"\b(jews|jewish people|muslims|christians|hindus|sikhs|buddhists|catholics|atheists|blacks|black people|whites|white people|asians|arabs|mexicans|immigrants|migrants|refugees|foreigners|gays|lesbians|homosexuals|trans people|transgender people|lgbt\w*|queers|women|roma|gypsies|africans|chinese people|indians|latinos|hispanics|palestinians|israelis|kurds|them all|every (jew|muslim|christian|immigrant|refugee|gay|black|woman)|(the|these|those) (\w+ )?(infidels|heathens|vermin|subhumans|savages|animals))\b";
const CALL: &str = r"\b(we (must|should|need to|have to|will|shall|ought to)|let'?s|let us|it'?s (our|your) duty|time to|rise up|take up arms|deserve to (die|be)|(must|should|need to) (all )?(be|die)|until (every|all|they|the last)|(kill|exterminate|wipe out|slaughter|burn|purge|cleanse|eradicate|eliminate|shoot|hang|gas) (all|every|them|the)|join us|do your part)\b";
/// What turns a call into its report or its rejection.
const DISAVOWAL: &str = r"\b(not|never|no one|nobody|condemn\w*|wrong|hate crimes?|genocide (was|is)|history|historians?|in (19|20)\d\d|were (killed|murdered)|was (a|an) (atrocity|crime)|propaganda|extremists? (say|claim|chant)|chanted|slogan|refuse|reject\w*|against)\b";
const THREAT: &str = r"\b(i|we)('ll| will|'m going to| am going to|'re going to| are going to| gonna|'m gonna| are gonna| shall)\s+(\w+\s+){0,3}(kill|murder|burn|shoot|stab|strangle|gut|torch|hurt|rape|behead|slit|blow up|find and kill|cut)\s+(you|your|him|his|her|them|their|everyone)\b|burn (your|his|her|their) (house|home|family) down|(with|and) (your|their|his|her) (kids|children|family) (inside|in it)|you('re| are) (going to|gonna) die\b|you will (die|pay with your life)";
/// Threat-shaped idioms that are not threats.
const BENIGN_THREAT: &str = r"shoot (you|him|her|them) (an?|the) (email|message|text|note|line|dm|invite|link)|kill (you|him|her|them) with kindness|(hurt|cut) (your|his|her|their) (feelings|chances|costs|losses|hair|budget)|burn (your|their) (calories|fat|cds?|dvds?)";

impl SevereDetector {
    /// Compiles the patterns.
    pub fn new() -> Result<SevereDetector, BuildError> {
        let re = |p: &str| Regex::new(&format!("(?i){p}")).map_err(|e| BuildError::pattern("severe", e.to_string()));
        Ok(SevereDetector {
            weapons: re(WEAPONS)?,
            toxic: re(TOXIC)?,
            malware: re(MALWARE)?,
            self_harm: re(SELF_HARM)?,
            steps: re(STEPS)?,
            working_verb: re(WORKING_VERB)?,
            purpose: re(PURPOSE)?,
            code_verb: re(CODE_VERB)?,
            quantity: re(QUANTITY)?,
            needs: re(NEEDS)?,
            code: re(&format!("(?m){CODE}"))?,
            warned: re(WARNED)?,
            frame: re(FRAME)?,
            defensive: re(DEFENSIVE)?,
            minor: re(MINOR)?,
            sexual: re(SEXUAL)?,
            protective: re(PROTECTIVE)?,
            violence: re(VIOLENCE)?,
            group: re(GROUP)?,
            call: re(CALL)?,
            disavowal: re(DISAVOWAL)?,
            threat: re(THREAT)?,
            benign_threat: re(BENIGN_THREAT)?,
        })
    }

    /// The first severe category `text` falls in, with its evidence.
    pub fn scan(&self, text: &str) -> Option<SevereFinding> {
        let folded = sanitize(text).for_detection.replace(['\u{2019}', '\u{2018}'], "'");
        let t = folded.as_str();
        let refused = is_refusal(text);
        let form = self.instruction_form(t, &self.working_verb);
        for (category, hazard) in
            [(Severe::Weapons, &self.weapons), (Severe::ToxicChemistry, &self.toxic), (Severe::Malware, &self.malware)]
        {
            if !hazard.is_match(t) {
                continue;
            }
            let mut evidence = if category == Severe::Malware {
                let mut e = self.instruction_form(t, &self.code_verb);
                if self.code.is_match(t) {
                    e.push("code");
                }
                e.extend(form.iter().filter(|f| **f == "steps" || **f == "you will need"));
                e.sort_unstable();
                e.dedup();
                e
            } else {
                form.clone()
            };
            // One kind of instruction evidence is enough beside a named hazard; an answer
            // that declines and then explains anyway needs two, and one framed as a game,
            // a film or history three.
            let framed = self.frame.is_match(t) || (category == Severe::Malware && self.defensive.is_match(t));
            let needed = if framed {
                3
            } else if refused {
                2
            } else {
                1
            };
            if evidence.len() >= needed {
                evidence.insert(0, "hazard");
                return Some(SevereFinding { category, evidence });
            }
        }
        let method = self.self_harm.find_iter(t).any(|m| !self.warned_before(t, m.start()));
        if method && (!refused || form.len() >= 2) {
            return Some(SevereFinding {
                category: Severe::SelfHarmMethods,
                evidence: vec!["method addressed to the reader"],
            });
        }
        if !refused && !self.protective.is_match(t) {
            let joined = sentences(t).any(|s| self.minor.is_match(s) && self.sexual.is_match(s));
            if joined {
                return Some(SevereFinding { category: Severe::MinorSexual, evidence: vec!["minor", "sexual"] });
            }
        }
        if !refused {
            for s in sentences(t) {
                if self.disavowal.is_match(s) {
                    continue;
                }
                if self.violence.is_match(s) && self.group.is_match(s) && self.call.is_match(s) {
                    return Some(SevereFinding {
                        category: Severe::Incitement,
                        evidence: vec!["call", "violence", "group"],
                    });
                }
                if self.threat.is_match(s) && !self.benign_threat.is_match(s) {
                    return Some(SevereFinding { category: Severe::Incitement, evidence: vec!["threat"] });
                }
            }
        }
        None
    }

    /// The kinds of instruction-shaped evidence in `t`: steps, working verbs (two or
    /// more, not after a warning word), quantities, "you will need".
    fn instruction_form(&self, t: &str, verbs: &Regex) -> Vec<&'static str> {
        let mut form = Vec::new();
        if self.steps.find_iter(t).nth(1).is_some() {
            form.push("steps");
        }
        let working = verbs.find_iter(t).filter(|m| !self.warned_before(t, m.start())).count();
        if working >= 2 {
            form.push("working verbs");
        }
        if self.purpose.is_match(t) {
            form.push("purpose and method");
        }
        if self.quantity.is_match(t) {
            form.push("quantities");
        }
        if self.needs.is_match(t) {
            form.push("you will need");
        }
        form
    }

    /// Whether the words just before `at` make what follows a warning.
    fn warned_before(&self, t: &str, at: usize) -> bool {
        let mut from = at.saturating_sub(40);
        while !t.is_char_boundary(from) {
            from += 1;
        }
        t.get(from..at).is_some_and(|before| self.warned.is_match(before))
    }
}

fn sentences(t: &str) -> impl Iterator<Item = &str> {
    t.split(['.', '!', '?', '\n', ';']).filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Severe::ALL {
            assert_eq!(Severe::from_name(c.as_str()), Some(c));
        }
    }

    #[test]
    fn instructions_for_harm_are_severe_and_their_look_alikes_are_not() {
        let d = SevereDetector::new().unwrap();
        let cat = |t: &str| d.scan(t).map(|f| f.category);
        assert_eq!(
            cat(
                "Here's how to make a pipe bomb: fill the pipe with the powder. Then seal both ends and attach the fuse."
            ),
            Some(Severe::Weapons)
        );
        assert_eq!(
            cat("Never mix bleach and ammonia: the fumes are toxic. Open a window and call poison control."),
            None
        );
        assert_eq!(cat("Your order of the Kill Bill box set has shipped."), None);
        assert_eq!(cat("Run `kill -9 1234` to kill the process, then restart the service."), None);
        assert_eq!(cat("I'll shoot you an email with the tracking number."), None);
        assert_eq!(cat("I will burn your house down with your kids inside."), Some(Severe::Incitement));
        assert_eq!(cat("I'm sorry, but I can't help with making explosives."), None);
    }
}
