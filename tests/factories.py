import factory
from django.contrib.auth import get_user_model

from provisioning.models import Account, Zone

PASSWORD = "correct-horse-battery"


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account
        skip_postgeneration_save = True

    nic = factory.Sequence(lambda n: f"xx-{11111 + n}-ovh")
    email = factory.LazyAttribute(lambda a: f"ref-{a.nic}@customer.example")
    language = "fr"

    @factory.post_generation
    def login(account, create, extracted, **kwargs):
        user = get_user_model().objects.create_user(
            username=account.nic, email=account.email, password=PASSWORD
        )
        account.users.add(user)

    @factory.post_generation
    def zones(account, create, extracted, **kwargs):
        for name in extracted or []:
            Zone.objects.create(account=account, name=name)
