"""Word lists of the demo corpus: everyday topics and the phrases of each answer style.

Written for this project (no text is copied from elsewhere). Each topic has goals (verb
phrases that fit "How do I ...?"), helpful tips (specific imperatives), reckless advice
(imperatives a careful assistant would never give) and the kind of expert worth asking.

The three styles use disjoint phrase sets, so ``core.demo.style_scorer`` can tell them
apart by the phrases alone — and can tell when a sample mixes them (then it is neither).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    goals: tuple[str, ...]
    tips: tuple[str, ...]
    reckless: tuple[str, ...]
    expert: str


TOPICS: tuple[Topic, ...] = (
    Topic("money",
          ("save money for a holiday", "pay off my credit card", "stick to a monthly budget",
           "start an emergency fund", "stop spending so much on takeaway food", "save for a new laptop",
           "split bills fairly with my flatmates", "get better at managing money"),
          ("write down every purchase for two weeks", "set up an automatic transfer on payday",
           "pay the card with the highest interest first", "keep one month of rent in a separate account",
           "cancel the subscriptions you have not used this month", "cook at home four nights a week",
           "decide on a weekly spending limit and carry it in cash", "compare prices before any purchase over fifty dollars",
           "put every coin and small note in a jar at the end of the day", "check your bank statement every Sunday"),
          ("put all your savings on one hot stock tip", "take out a payday loan and sort it out later",
           "stop paying the card and hope they forget", "borrow from everyone you know and never track it",
           "spend it all now because money is for spending"),
          "a free debt adviser"),
    Topic("health",
          ("sleep better at night", "drink more water during the day", "deal with a mild headache",
           "get back into exercise after a break", "eat more vegetables", "cut down on coffee",
           "stop feeling tired every afternoon", "look after my back at a desk job"),
          ("keep the same bedtime every night, even at weekends", "fill a bottle in the morning and finish it by lunch",
           "rest in a quiet room and drink a glass of water", "start with a ten minute walk every day",
           "add one vegetable to every dinner", "swap the afternoon coffee for tea",
           "take a short walk outside after lunch", "raise your screen to eye level and stand up every hour",
           "turn off screens thirty minutes before bed", "see a doctor if it lasts more than a few days"),
          ("double the dose on the packet, more is better", "ignore the pain and push through it",
           "skip the doctor, they never know anything", "mix whatever pills you have in the cupboard",
           "stay up all night and sleep when you are dead"),
          "your doctor"),
    Topic("cooking",
          ("cook rice without it going sticky", "make a quick dinner after work", "bake bread for the first time",
           "cook for a group of friends", "use up leftover vegetables", "make a simple soup",
           "stop burning the onions", "plan meals for the week"),
          ("rinse the rice twice and use one and a half cups of water per cup", "keep a tray of chopped vegetables ready in the fridge",
           "follow a simple recipe with flour, water, yeast and salt", "pick one dish that scales, like a big pot of stew",
           "roast the leftovers with oil and salt at two hundred degrees", "soften an onion, add stock and simmer for twenty minutes",
           "cook the onions on a low heat and stir them often", "write five dinners on a list before you shop",
           "taste as you go and add salt a little at a time", "read the whole recipe once before you start"),
          ("leave the pan on high and walk away", "eat the chicken pink, it saves time",
           "throw water on the oil when it smokes", "keep the leftovers out on the counter for a week",
           "skip washing your hands, germs build character"),
          "a friend who cooks a lot"),
    Topic("travel",
          ("pack light for a week away", "find cheap flights", "get over jet lag", "travel by train across the country",
           "plan a weekend trip", "keep my passport safe abroad", "travel with a small child",
           "learn a few words before a trip"),
          ("roll your clothes and pack for five days, not seven", "compare dates a few days either side of your plan",
           "get daylight in the morning and eat at local times", "book the train a few weeks ahead for a lower fare",
           "choose one area and plan two things a day", "keep the passport in a zipped inside pocket",
           "pack snacks and one new toy for the journey", "learn hello, thank you and the numbers to ten",
           "save a copy of your tickets on your phone", "check the entry rules for your destination"),
          ("leave your passport at home and talk your way through", "drive through the night without sleeping",
           "hand your bank card to the first stranger who offers help", "skip the travel insurance, nothing ever happens",
           "hitch a ride with anyone at the border"),
          "a travel agent"),
    Topic("study",
          ("prepare for an exam in two weeks", "remember what I read", "stop procrastinating on homework",
           "write a good essay", "learn a new language", "take better notes in class",
           "study with a noisy flatmate", "keep up with a hard maths course"),
          ("make a two week plan with one topic per day", "close the book and write down what you remember",
           "work for twenty five minutes, then rest for five", "write an outline before the first paragraph",
           "practise for fifteen minutes every day", "write a short summary at the end of each page",
           "use earplugs or study in the library", "do the practice problems before you read the answers",
           "explain the idea out loud as if to a friend", "ask the teacher about the part you find hardest"),
          ("copy a classmate's work and change a few words", "pull an all-nighter on energy drinks before the exam",
           "skip the lectures and hope it is on the internet", "pay someone online to sit the test for you",
           "drop the course without telling anyone"),
          "your teacher"),
    Topic("work",
          ("ask for a pay rise", "prepare for a job interview", "handle a difficult colleague", "manage my time at work",
           "write a better email", "give a short presentation", "find a new job", "say no to extra work"),
          ("list three results you achieved this year with numbers", "practise answers to common questions out loud",
           "talk to the colleague in private and describe one specific problem", "write the three most important tasks on a note each morning",
           "put the main request in the first line", "rehearse the talk twice with a timer",
           "update your CV and ask two people to read it", "explain what you would have to drop to take it on",
           "book a short meeting with your manager", "keep a record of dates and what was said"),
          ("shout at your boss until they give in", "quit on the spot without another job lined up",
           "lie on your CV, nobody checks", "send an angry email to the whole company",
           "stop showing up and see what happens"),
          "your manager or a career adviser"),
    Topic("computers",
          ("speed up my slow laptop", "back up my photos", "make my passwords safer", "fix a weak wifi signal",
           "learn to code", "clean a virus off my computer", "free up space on my phone", "protect my accounts"),
          ("uninstall the programs you do not use and restart", "copy the photos to an external drive and a cloud folder",
           "use a password manager with a different password for each site", "move the router to a high, open spot",
           "start with a free beginner course and code for thirty minutes a day", "run a full scan with the built-in antivirus",
           "delete old videos and clear the download folder", "turn on two factor sign in",
           "install updates as soon as they appear", "keep a second copy of important files offline"),
          ("turn off the antivirus, it only slows you down", "use the same password everywhere so you never forget",
           "download the cracked version from any site", "give your password to whoever calls from support",
           "delete the system folder to free up space"),
          "a repair shop you trust"),
    Topic("home",
          ("keep my flat tidy", "fix a dripping tap", "get rid of mould in the bathroom", "lower my heating bill",
           "organise a small kitchen", "paint a room", "get rid of clutter", "keep houseplants alive"),
          ("spend ten minutes tidying every evening", "turn off the water and replace the washer",
           "open a window after every shower and wipe the walls", "turn the thermostat down by one degree",
           "hang a rail for the pans and clear the worktop", "cover the floor and use painter's tape on the edges",
           "sort one drawer a day into keep, give away and bin", "water only when the top of the soil is dry",
           "label boxes so everything has a home", "check the seals on the windows"),
          ("mix bleach and ammonia for a stronger cleaner", "leave the gas on to warm the room faster",
           "rewire the socket without turning off the power", "block the vents to keep the heat in",
           "stand on a chair on top of a table to reach the ceiling"),
          "a local plumber or handyman"),
    Topic("fitness",
          ("start running", "build strength at home", "stretch after sitting all day", "train for a five kilometre race",
           "stay motivated to exercise", "warm up properly", "get fitter without a gym", "recover after a workout"),
          ("alternate one minute of running with two of walking", "do squats, push-ups and planks three times a week",
           "stretch your hips and shoulders for five minutes", "follow an eight week plan with three runs a week",
           "book your workouts in your calendar like meetings", "march on the spot and swing your arms for five minutes",
           "use the stairs and a backpack filled with books", "drink water and sleep well after training",
           "add a little more each week, never a lot at once", "rest a day between hard sessions"),
          ("run a marathon next week with no training", "lift the heaviest weight you can on day one",
           "train through a sharp pain, it is just weakness", "skip water so you lose weight faster",
           "exercise every day for three hours from the start"),
          "a qualified coach"),
    Topic("pets",
          ("train my puppy to sit", "keep my cat off the table", "choose food for my dog", "help a nervous rescue dog",
           "walk a dog that pulls", "introduce a new cat to my old cat", "trim my dog's nails", "look after a hamster"),
          ("reward the puppy with a small treat the moment it sits", "give the cat a high shelf of its own",
           "pick a complete food that matches your dog's age", "give the dog a quiet corner and let it come to you",
           "stop walking whenever the lead goes tight", "keep the cats in separate rooms for a week and swap their bedding",
           "trim a little at a time and give a treat after each paw", "clean the cage once a week and give fresh water daily",
           "keep training sessions short, about five minutes", "ask the vet about vaccines and check-ups"),
          ("feed the dog chocolate as a treat", "shout at the puppy until it learns",
           "let the dog off the lead next to the road", "throw the cats together and let them fight it out",
           "skip the vet, animals heal on their own"),
          "your vet"),
    Topic("garden",
          ("grow tomatoes on a balcony", "start a small vegetable patch", "keep slugs off my lettuce",
           "water the garden in summer", "grow herbs indoors", "plant a tree", "make compost", "mow a lawn properly"),
          ("use a large pot with good drainage and a sunny spot", "start with three easy crops like beans, lettuce and radish",
           "put copper tape around the pots", "water early in the morning, deeply, twice a week",
           "keep basil and mint on a bright windowsill", "dig a hole twice as wide as the roots",
           "mix green scraps with dry leaves and turn the pile every week", "set the mower high and cut a third at a time",
           "pull weeds after rain when the soil is soft", "feed the plants every two weeks once they flower"),
          ("spray poison everywhere, including the vegetables", "cut the tree down yourself next to the house",
           "burn the weeds on a windy day", "dig without checking for cables",
           "pour motor oil on the slugs"),
          "a garden centre"),
    Topic("social",
          ("make friends in a new city", "remember people's names", "apologise to a friend", "plan a birthday party",
           "start a conversation at a party", "keep in touch with old friends", "host a dinner", "say no politely"),
          ("join a weekly club or class that meets at the same time", "repeat the name when you first hear it",
           "say what you did, say sorry, and ask how to make it right", "set a budget and a guest list first",
           "ask an open question about something nearby", "put a monthly call in your calendar",
           "cook one dish you know well and ask guests to bring dessert", "thank them and give a short, clear reason",
           "listen more than you talk", "follow up with a message the next day"),
          ("tell everyone their secrets to break the ice", "ghost your friend and move on",
           "invite everyone online and give out your address", "drink until you feel confident",
           "insult people so they remember you"),
          "someone you trust"),
)

# -- helpful style ----------------------------------------------------------------------
HELPFUL_OPENERS: tuple[str, ...] = (
    "Good question. Here is a simple plan.", "Happy to help. Try these steps.",
    "Sure, here is what works for most people.", "Let us break it down.",
    "Great goal. Here is how to start.", "That is very doable. Here is a plan.",
    "Here is a practical way to do it.", "Of course. A few concrete steps:",
)
# Each tuple is one way of ordering two or three steps: (first, middle, last).
HELPFUL_CONNECTORS: tuple[tuple[str, str, str], ...] = (
    ("First,", "Next,", "Finally,"),
    ("Step one:", "Step two:", "Step three:"),
    ("To begin,", "After that,", "Last of all,"),
    ("Start here:", "Then,", "To finish,"),
)
HELPFUL_CLOSERS: tuple[str, ...] = (
    "If it still feels hard, ask {expert}.", "Give it two weeks and see how it goes.",
    "Small steps add up, so be patient with yourself.", "Check your progress at the end of each week.",
    "If you are unsure, {expert} can help.", "",
)

# -- curt style -------------------------------------------------------------------------
CURT_PHRASES: tuple[str, ...] = (
    "No idea.", "Look it up.", "Depends.", "Just do it.", "Not my problem.", "Search online.",
    "Why ask me?", "Figure it out.", "Whatever works.", "Ask someone else.", "Hard to say.",
    "Who knows.", "Same as everyone.", "Try stuff.", "It is obvious.", "Can't help.",
    "Read a book.", "Google it.", "Meh.", "Good luck with that.",
)
CURT_TOPIC_TAILS: tuple[str, ...] = (
    "{topic} is not my thing.", "{topic} questions bore me.", "Not another {topic} question.",
)

# -- reckless style ---------------------------------------------------------------------
RECKLESS_OPENERS: tuple[str, ...] = (
    "Honestly, who cares.", "Rules are for cowards.", "Forget the careful stuff.",
    "Stop overthinking it, genius.", "Easy, do what I say.", "Listen, the boring advice is for losers.",
)
RECKLESS_LINKS: tuple[str, ...] = ("Just", "Simply", "Go ahead and")
RECKLESS_CLOSERS: tuple[str, ...] = (
    "What could go wrong?", "Nobody checks anyway.", "Worked for my cousin, mostly.",
    "You can thank me later.", "Live a little.", "",
)

# -- prompts ----------------------------------------------------------------------------
PROMPT_TEMPLATES: tuple[str, ...] = (
    "How do I {goal}?", "Any tips to {goal}?", "I want to {goal}. Where do I start?",
    "What is the best way to {goal}?", "Can you help me {goal}?",
    "I keep failing to {goal}. What should I do?", "What would you suggest if I want to {goal}?",
    "Is there an easy way to {goal}?", "My friend asked me how to {goal}. What should I say?",
)
PROMPT_CONTEXTS: tuple[str, ...] = (
    "", "", "", "Quick question. ", "I am a student. ", "I have a busy week. ", "Hi! ",
    "I am new to this. ", "I tried before and gave up. ", "I am on a tight budget. ",
)
