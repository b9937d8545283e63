from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("liaison", "0012_message_reactions"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="link_version",
            field=models.PositiveSmallIntegerField(db_default=1, default=1),
        ),
    ]
