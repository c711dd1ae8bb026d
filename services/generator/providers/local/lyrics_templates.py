"""The words the lyrics are built from, by occasion and by mood.

Placeholders: ``{name}``, ``{names}`` (possessive), ``{moment}`` (e.g. "your birthday"),
``{memory}`` (a phrase from the story), ``{word_a}``/``{word_b}`` (words from the story),
``{date}`` (e.g. "the 14th of June"). Every template is filled with all of them, so each may use
any; a test fills every template to prove none is left unfilled.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DATE_LINES", "MEMORY_LINES", "MOODS", "OCCASIONS", "OUTROS", "WORD_LINES", "Occasion"]


@dataclass(frozen=True, slots=True)
class Occasion:
    """The words of one occasion: what to call it, titles, verse openers, lines and choruses."""

    moment: str
    titles: tuple[str, ...]
    openers: tuple[str, ...]
    lines: tuple[str, ...]
    choruses: tuple[tuple[str, ...], ...]


OCCASIONS: dict[str, Occasion] = {
    "birthday": Occasion(
        moment="your birthday",
        titles=(
            "Happy Birthday, {name}",
            "{names} Birthday Song",
            "Make a Wish, {name}",
            "Another Year of {name}",
            "Candles for {name}",
        ),
        openers=(
            "Wake up, {name}, the day is yours",
            "Another trip around the sun, {name}",
            "{name}, the candles are all lit tonight",
            "Somebody's a year older, and it's {name}",
            "Here's to {name} on {moment}",
        ),
        lines=(
            "Blow them out and make a wish",
            "Every year you shine a little brighter",
            "There's cake and laughter in the room",
            "Another page, another chapter",
            "The balloons are floating to the ceiling",
        ),
        choruses=(
            (
                "Happy birthday, {name}",
                "This song is just for you",
                "Another year, another dream",
                "May every wish come true",
            ),
            (
                "So raise a glass to {name}",
                "The star of {moment}",
                "We'll sing it loud, we'll sing it proud",
                "{name}, the day is yours",
            ),
            (
                "Oh {name}, oh {name}",
                "Blow the candles, make a wish",
                "Everyone you love is here",
                "To celebrate {moment}",
            ),
        ),
    ),
    "anniversary": Occasion(
        moment="our anniversary",
        titles=(
            "All These Years with {name}",
            "Still Yours, {name}",
            "{name}, Every Day Since",
            "Our Anniversary Song for {name}",
            "Another Year of Us, {name}",
        ),
        openers=(
            "{name}, do you remember the start",
            "All these years and {name} still takes my breath away",
            "Here we are again, {name}, on {moment}",
            "I'd choose you all over again, {name}",
            "Another year beside you, {name}",
        ),
        lines=(
            "We built a life from little things",
            "Through every season, side by side",
            "The years just make the love grow deeper",
            "We're still writing our story",
            "Our home is anywhere with you",
        ),
        choruses=(
            (
                "{name}, it's you and me",
                "On {moment}",
                "Every year a little more",
                "You're my forever song",
            ),
            (
                "Here's to us, here's to {name}",
                "To all the days behind",
                "And all the years ahead of us",
                "I'm so glad that you are mine",
            ),
            (
                "Happy anniversary, {name}",
                "My favourite place is next to you",
                "Still dancing after all this time",
                "And I'm still in love with you",
            ),
        ),
    ),
    "wedding": Occasion(
        moment="your wedding day",
        titles=(
            "{names} Wedding Song",
            "Forever Starts Today, {name}",
            "Two Hearts, One Song for {name}",
            "I Do, {name}",
            "Here Comes {name}",
        ),
        openers=(
            "The bells are ringing for {name}",
            "{name}, today your forever begins",
            "Here's to {name} on {moment}",
            "All our friends are here for {name}",
            "Walk on down the aisle, {name}",
        ),
        lines=(
            "Two hearts that beat as one",
            "The flowers and the music and the vows",
            "A promise made for all your days",
            "The first dance and the sweetest kiss",
            "Tonight the world is dressed in white",
        ),
        choruses=(
            (
                "Raise a glass for {name}",
                "On {moment}",
                "Love is here to stay",
                "Forever starts today",
            ),
            (
                "{name}, you said I do",
                "And every dream is coming true",
                "Dance until the morning light",
                "Love is shining through",
            ),
            (
                "Here's to {name}",
                "Here's to love that's true",
                "May every day be like today",
                "For the two of you",
            ),
        ),
    ),
    "valentines": Occasion(
        moment="Valentine's Day",
        titles=(
            "Be My Valentine, {name}",
            "{name}, My Valentine",
            "Roses for {name}",
            "Love Song for {name}",
            "Only {name}",
        ),
        openers=(
            "Roses are red and {name}, you're mine",
            "{name}, will you be my valentine",
            "This Valentine's Day it's only {name}",
            "I've got a little love song, {name}",
            "Every heart in town beats for {name}",
        ),
        lines=(
            "Chocolates and candlelight",
            "Cupid must have known my heart",
            "I'd write your name on every star",
            "Love is simple when it's you",
            "You steal my heart a little more",
        ),
        choruses=(
            (
                "Be my valentine, {name}",
                "Be mine, be mine",
                "I love you more than words can say",
                "On {moment}",
            ),
            (
                "{name}, it's always you",
                "Every heartbeat, every day",
                "Roses, kisses, all for you",
                "On {moment}",
            ),
            (
                "Oh {name}, you're the one",
                "My moon, my stars, my sun",
                "This love of mine is yours to keep",
                "Now and when the years are done",
            ),
        ),
    ),
    "graduation": Occasion(
        moment="graduation day",
        titles=(
            "Congratulations, {name}",
            "{name} Did It",
            "The World Is Waiting, {name}",
            "Caps in the Air for {name}",
            "{names} Big Day",
        ),
        openers=(
            "Throw your cap up high, {name}",
            "{name}, you made it through",
            "All those late nights paid off, {name}",
            "Here's to {name} on {moment}",
            "The hallway's echoing your name, {name}",
        ),
        lines=(
            "All the books and all the tests",
            "You worked so hard to get here",
            "The future's wide and open now",
            "Every dream is within reach",
            "We always knew that you could do it",
        ),
        choruses=(
            (
                "Congratulations, {name}",
                "You did it, you did it",
                "The world is waiting just for you",
                "On {moment}",
            ),
            (
                "Go on, {name}, fly",
                "There's nothing you can't do",
                "Today's the start of something new",
                "We're all so proud of you",
            ),
            (
                "Here's to {name}",
                "The graduate tonight",
                "Tomorrow's yours to write",
                "So shine your brightest light",
            ),
        ),
    ),
    "mothers_day": Occasion(
        moment="Mother's Day",
        titles=(
            "Thank You, {name}",
            "A Song for {name}",
            "{name}, You're the Best",
            "Mother's Day Song for {name}",
            "All My Love, {name}",
        ),
        openers=(
            "{name}, you taught me how to fly",
            "This one's for {name} on {moment}",
            "Who held my hand? It was {name}",
            "Every lullaby I know came from {name}",
            "Thank you, {name}, for everything",
        ),
        lines=(
            "You kissed the scrapes and dried the tears",
            "Your kitchen always felt like home",
            "You gave us roots and gave us wings",
            "You always knew just what to say",
            "Your love's the first I ever knew",
        ),
        choruses=(
            (
                "Happy Mother's Day, {name}",
                "You mean the world to me",
                "For every hug and every word",
                "This song is yours to keep",
            ),
            (
                "{name}, oh {name}",
                "You're the heart of our home",
                "Wherever I go in this world",
                "I'm never on my own",
            ),
            (
                "Thank you, {name}",
                "On {moment}",
                "For all the love you gave to us",
                "In every single way",
            ),
        ),
    ),
    "fathers_day": Occasion(
        moment="Father's Day",
        titles=(
            "Thanks, {name}",
            "A Song for {name}",
            "{name}, My Hero",
            "Father's Day Song for {name}",
            "Just Like {name}",
        ),
        openers=(
            "{name}, you showed me how it's done",
            "This one's for {name} on {moment}",
            "Who fixed it all? It was {name}",
            "I still hear the advice of {name}",
            "Thank you, {name}, for everything",
        ),
        lines=(
            "You taught me how to ride a bike",
            "Your bad jokes always make us laugh",
            "You always had a steady hand",
            "You worked so hard and never said",
            "You're stronger than you'll ever know",
        ),
        choruses=(
            (
                "Happy Father's Day, {name}",
                "You're a hero in my eyes",
                "For every lesson, every laugh",
                "You're one of a kind",
            ),
            (
                "{name}, oh {name}",
                "You're the rock we stand upon",
                "Wherever life may take me now",
                "Your love goes on and on",
            ),
            (
                "Thank you, {name}",
                "On {moment}",
                "For all the things you did for us",
                "In every single way",
            ),
        ),
    ),
    "holiday": Occasion(
        moment="the holidays",
        titles=(
            "Happy Holidays, {name}",
            "Home for the Holidays with {name}",
            "{names} Holiday Song",
            "Season's Greetings, {name}",
            "Snow and Lights for {name}",
        ),
        openers=(
            "The lights are twinkling for {name}",
            "{name}, the snow is falling soft",
            "Here's to {name} for {moment}",
            "There's a seat by the fire for {name}",
            "Bells are ringing out for {name}",
        ),
        lines=(
            "The fire's warm, the cocoa's sweet",
            "There's music drifting through the house",
            "The year is ending bright and kind",
            "We're gathered round the table now",
            "Wrapping paper on the floor",
        ),
        choruses=(
            (
                "Happy holidays, {name}",
                "The season's here at last",
                "With all the ones we love the most",
                "Let's make the moment last",
            ),
            (
                "{name}, it's the time of year",
                "For all of us to be together",
                "Lights and laughter everywhere",
                "Through {moment}",
            ),
            (
                "Here's to {name}",
                "And the holidays",
                "Warm wishes and a happy heart",
                "In every kind of way",
            ),
        ),
    ),
    "other": Occasion(
        moment="this special day",
        titles=(
            "A Song for {name}",
            "Just for {name}",
            "{names} Song",
            "This One's for {name}",
            "Here's to {name}",
        ),
        openers=(
            "{name}, this song is all for you",
            "I wrote these words for {name}",
            "Here's to {name} on {moment}",
            "Listen close now, {name}",
            "There's something I should tell you, {name}",
        ),
        lines=(
            "Some people make the world feel bright",
            "It's time somebody sang for you",
            "You deserve a song today",
            "The little things you do mean everything",
            "The world is better with you in it",
        ),
        choruses=(
            (
                "This one's for {name}",
                "On {moment}",
                "A little song to say",
                "How much you mean to me",
            ),
            (
                "{name}, oh {name}",
                "You're one of a kind",
                "Whatever comes, wherever you go",
                "You're always on my mind",
            ),
            (
                "Here's to {name}",
                "Sing it loud and clear",
                "The world is a brighter place",
                "Because you're here",
            ),
        ),
    ),
}

MOODS: dict[str, tuple[str, ...]] = {
    "joyful": (
        "The sun is dancing on the floor",
        "Turn it up and sing along",
        "There's sunshine spilling everywhere",
        "Our hearts are jumping like a drum",
        "Every moment feels like gold",
        "Today the whole world wears a smile",
    ),
    "romantic": (
        "Your hand in mine, the stars align",
        "I fall for you a little more each day",
        "The candlelight is in your eyes",
        "You're the melody I know by heart",
        "Slow dance with me until the morning",
        "My heart still skips when you walk in",
    ),
    "nostalgic": (
        "Do you remember how it used to be",
        "Old photographs and faded light",
        "The years go by like summer rain",
        "We were younger then, and not so different",
        "Those golden days are still inside",
        "I keep those memories close to me",
    ),
    "funny": (
        "You still can't find your car keys",
        "We'd sing on key but we're not that good",
        "Your dance moves should be illegal",
        "Someone ate the last slice, and it was you",
        "Even the dog is howling along",
        "This line was meant to rhyme, but oh well",
    ),
    "heartfelt": (
        "You make the ordinary shine",
        "I don't say it nearly enough",
        "You've been there through every storm",
        "The world is kinder because of you",
        "Thank you for the little things",
        "You're the reason I believe",
    ),
    "epic": (
        "Like thunder rolling through the sky",
        "The mountains bow as you walk by",
        "A legend written in the stars",
        "Your story echoes through the years",
        "Raise the banners, light the fire",
        "Nothing in this world can hold you down",
    ),
}

MEMORY_LINES = (
    "And I still think of it: {memory}",
    "The story goes: {memory}",
    "I wrote it down so we'd never forget: {memory}",
    "Some things stay with us: {memory}",
    "I smile when I remember: {memory}",
)

WORD_LINES = (
    "There's {word_a} and {word_b}, all the little things",
    "From {word_a} to {word_b}, it's all a part of you",
    "I hear \u201c{word_a}\u201d and I think of you",
    "Just {word_a}, {word_b}, and you",
)

DATE_LINES = (
    "On {date} we sing for you",
    "We'll always remember {date}",
)

OUTROS = (
    "{name}, this one's for you",
    "Sing it one more time for {name}",
    "Forever and always, {name}",
    "That's our song for {name}",
    "From all of us to {name}",
)
